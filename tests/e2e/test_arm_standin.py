"""aarch64 end to end, cross-built on x86: the aarch64 stand-in base (debootstrap under qemu-user binfmt), a real
`eulerpub build --profile arm-standin` (DIB -a arm64: GPT + ESP, the base's EFI tree dropped, grub installed fresh
with --removable), a boot under qemu-system-aarch64 (TCG) with UEFI firmware to SSH with cloud-init, and a publish
to moto registered `uefi`.

Slow (1 h 42 min on 2 cores with a cold stand-in cache, about 50 min with a warm one), so it runs only with
EULERPUB_TEST_ARM=1: `make test-arm`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from eulerpub.catalog import image_path
from eulerpub.manifest import read_record
from tests.mirror import MirrorServer
from tests.standin import STANDIN_VERSION, ensure_standin

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(3 * 3600),
    pytest.mark.skipif(os.environ.get("EULERPUB_TEST_ARM") != "1", reason="aarch64 cross-build: make test-arm"),
    pytest.mark.needs_root("diskimage-builder needs root (loop devices, mounts)"),
]


@pytest.fixture(scope="module")
def arm_mirror(tmp_path_factory):
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.fail("qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static "
                    "binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)")
    standin = ensure_standin(arch="aarch64")
    root = tmp_path_factory.mktemp("mirror-arm")
    target = root / image_path(STANDIN_VERSION, "aarch64")
    target.parent.mkdir(parents=True)
    for name in (target.name, f"{target.name}.sha256sum"):
        shutil.copyfile(standin / name, target.with_name(name))
    with MirrorServer(root) as server:
        yield server.url


def test_arm_standin_cross_build_uefi_boot_publish(cli, arm_mirror, persistent_cache, tmp_path, aws_env,
                                                    monkeypatch):
    started = time.monotonic()
    built = cli("build", "--profile", "arm-standin", "--profiles-dir", str(REPO / "tests" / "profiles"),
                "--elements-dir", str(REPO / "tests" / "elements"), "--mirror", arm_mirror,
                "--build-dir", str(tmp_path / "builds"), "--json")
    build_s = time.monotonic() - started
    assert built.exit_code == 0, built.stderr[-3000:]
    record_path = Path(json.loads(built.stdout)["record"])
    record = read_record(record_path)
    assert record.arch == "aarch64" and record.boot is not None
    assert (record.boot.layout, record.boot.modes) == ("uefi", ["uefi"])
    assert record.boot.partition_table["esp"] is True and record.boot.partition_table["label"] == "gpt"

    started = time.monotonic()
    tested = cli("test", str(record_path), "--timeout", "1200", "--json")  # aarch64 under TCG is slow
    boot_s = time.monotonic() - started
    report = json.loads(tested.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}
    assert tested.exit_code == 0 and not failed, f"{failed}; console: {report.get('console_log')}"
    assert report["modes"] == {"uefi": "passed"}

    monkeypatch.setenv("EULERPUB_POLL_INTERVAL", "0.2")
    published = cli("publish", "--cloud", "aws", "--record", str(record_path), "--region", "us-east-1", "--json")
    assert published.exit_code == 0, published.stderr[-3000:]
    (_region, sent), = aws_env.registered
    assert (sent["Architecture"], sent["BootMode"]) == ("arm64", "uefi")
    print(f"arm e2e wall times: cross-build {build_s:.0f} s, UEFI boot test {boot_s:.0f} s "
          f"(SSH at {report['boot_seconds']:.0f} s, {report['accel']})")
