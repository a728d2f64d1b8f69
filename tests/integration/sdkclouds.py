"""Shared ground for the Huawei, Tencent and Alibaba publish tests: the disk images, the S3-compatible store (moto), the
emulator harness each cloud's conftest builds, and running the real CLI in-process or as a child process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.disks import hybrid_head
from tests.fixtures_moto import MotoHarness

MiB = 1024 * 1024
DATA = 40 * MiB  # incompressible bytes in the image: five 8 MiB parts, so a killed upload has parts to resume
VIRTUAL = 64 * MiB
RELEASE = "24.03-LTS-SP1"
WAIT_TIMEOUT_MINUTES = "0.05"  # 3 seconds: emulator jobs finish in a few polls; only a stuck one times out
POLL_SECONDS = "0.01"


def make_images(directory: Path) -> dict[str, Path]:
    """A raw and a qcow2 openEuler-named image holding the same random data."""
    raw = directory / f"openEuler-{RELEASE}-disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(VIRTUAL)
        handle.write(random.Random(5).randbytes(DATA))
        handle.seek(0)
        handle.write(hybrid_head(VIRTUAL))  # a hybrid build's partition table: publish registers what it allows
    qcow2 = directory / f"openEuler-{RELEASE}-disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    return {"raw": raw, "qcow2": qcow2}


def s3(moto: MotoHarness, region: str) -> Any:
    return boto3.client("s3", endpoint_url=moto.url, region_name=region, aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}))


def object_keys(moto: MotoHarness, region: str, bucket: str) -> list[str]:
    return [o["Key"] for o in s3(moto, region).list_objects_v2(Bucket=bucket).get("Contents", [])]


def object_exists(moto: MotoHarness, region: str, bucket: str, key: str) -> bool:
    """What OBS/COS would answer the import service: does the uploaded object exist?"""
    try:
        s3(moto, region).head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


@dataclass
class Harness:
    """One cloud's emulator wired to moto, plus what the scenarios need to know about that cloud."""

    cloud: str
    emulator: Any
    moto: MotoHarness
    regions: tuple[str, str, str]  # source, then two copy regions
    bucket: str
    share: str
    env: dict[str, str]  # credentials and endpoints, already set in os.environ for the test
    secret: str  # the secret key value: must never appear in output or records
    secret_variable: str
    import_action: str
    copy_action: str
    poll_action: str  # a status call every wait makes
    create_actions: tuple[str, ...]  # calls that create or change something
    says_why: bool  # the cloud reports why an async operation failed (IMS does; CVM gives only the state)
    live: Callable[[Any], bool] = field(repr=False, default=lambda image: True)  # not a failed image
    destinations: Callable[[Any], list[str]] = field(repr=False, default=lambda call: [])  # of a copy call
    cloud_args: tuple[str, ...] = ()  # options every publish to this cloud needs (Huawei: --agency)
    throttle_codes: tuple[str, ...] = ("APIGW.0308", "RequestLimitExceeded")  # the emulator's throttling answer
    failed_states: tuple[str, str] = ("IMPORTFAILED", "CREATEFAILED")  # the state words of a failed import, copy

    @property
    def source(self) -> str:
        return self.regions[0]

    def args(self, image: Path, *extra: str, arch: str = "x86_64", share: bool = True) -> list[str]:
        copies = [a for region in self.regions[1:] for a in ("--copy-to", region)]
        shares = ["--share", self.share] if share else []
        return ["publish", "--cloud", self.cloud, "--image", str(image), "--arch", arch, "--release", RELEASE,
                "--region", self.source, *copies, *shares, "--bucket", self.bucket,
                "--build-dir", "build", "--wait-timeout", WAIT_TIMEOUT_MINUTES, "--json", *self.cloud_args, *extra]

    def images(self, region: str) -> list[Any]:
        return [image for image in self.emulator.images.values() if image.region == region]

    def live_images(self, region: str) -> list[Any]:
        return [image for image in self.images(region) if self.live(image)]

    def copies_to(self, region: str) -> int:
        return sum(region in self.destinations(call) for call in self.emulator.calls(self.copy_action))

    def creates(self) -> int:
        return sum(len(self._real_calls(action)) for action in self.create_actions)

    def imports(self) -> int:
        """Import calls made for real (a DryRun, as Tencent's preflight sends, creates nothing)."""
        return len(self._real_calls(self.import_action))

    def _real_calls(self, action: str) -> list[Any]:
        return [call for call in self.emulator.calls(action) if not (call.body or {}).get("DryRun")]

    def objects(self) -> list[str]:
        return object_keys(self.moto, self.source, self.bucket)

    def unstick(self) -> None:
        """The stuck operations finish after all, as a slow region's do."""
        for progress in self._progresses():
            progress.stuck = False

    def _progresses(self) -> Iterator[Any]:
        for holder in [*getattr(self.emulator, "jobs", {}).values(), *self.emulator.images.values()]:
            progress = getattr(holder, "progress", None)
            if progress is not None:
                yield progress


def report(stdout: str) -> dict[str, Any]:
    """The publish result: the whole of stdout, one JSON document even when the run fails."""
    return json.loads(stdout)


def rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {row["region"]: row for row in report(stdout)["regions"]}


def journal_files(root: Path) -> list[Path]:
    return sorted(root.glob("build/published/*/*/*.json"))


def journal(root: Path, cloud: str, region: str) -> dict[str, Any] | None:
    paths = sorted(root.glob(f"build/published/*/{cloud}/{region}.json"))
    return json.loads(paths[0].read_text()) if paths else None


def spawn_cli(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """The real console entry point in a child process (so it can be killed -9), with the test's environment."""
    env = {**os.environ, "EULERPUB_POLL_INTERVAL": POLL_SECONDS}
    return subprocess.Popen([sys.executable, "-m", "eulerpub", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
