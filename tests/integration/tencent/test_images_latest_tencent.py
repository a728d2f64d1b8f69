"""`eulerpub images latest --cloud tencent` against the CVM emulator (COS on moto)."""

from __future__ import annotations

from tests.integration.images_latest import scenario


def test_images_latest_on_tencent(cli, harness, tmp_path):
    def fail_next_import() -> None:
        harness.emulator.faults.add("fail", action=harness.import_action)

    scenario(cli, "tencent", harness.source, tmp_path / "disks", fmt="qcow2", extra=("--bucket", harness.bucket),
             fail_next_import=fail_next_import)
    assert any(not harness.live(image) for image in harness.images(harness.source))  # the failed one is there
