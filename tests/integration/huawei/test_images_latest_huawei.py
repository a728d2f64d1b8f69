"""`eulerpub images latest --cloud huawei` against the IMS emulator (OBS on moto)."""

from __future__ import annotations

from tests.integration.images_latest import scenario


def test_images_latest_on_huawei(cli, harness, tmp_path):
    def fail_next_import() -> None:
        harness.emulator.faults.add("fail", action=harness.import_action, reason="the disk has no partition table")

    scenario(cli, "huawei", harness.source, tmp_path / "disks", fmt="qcow2", extra=("--bucket", harness.bucket),
             fail_next_import=fail_next_import)
    assert any(not harness.live(image) for image in harness.images(harness.source))  # the failed one is there
