"""No credential value in logs, journals, results or any process's argv (a full publish, run with --debug)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3

from tests.fixtures_moto import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from tests.integration.aws.conftest import subprocess_env

SECRETS = (FAKE_SECRET_KEY, FAKE_ACCESS_KEY)


def descendants(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children += [int(entry.name), *descendants(int(entry.name))]
    return children


def argv_of(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def recording_qemu_img(tmp_path: Path) -> tuple[Path, Path]:
    """A `qemu-img` first on PATH that appends its own argv (NUL-separated, one line per run) to a log and
    execs the real one: every argv eulerpub gives it is seen, however short the run (sampling /proc can miss
    a conversion that takes milliseconds)."""
    real = shutil.which("qemu-img")
    assert real, "qemu-img is installed (scripts/install-host-deps.sh)"
    bin_dir, log = tmp_path / "recording-bin", tmp_path / "qemu-img-argv.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "qemu-img"
    wrapper.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" >> '{log}'\necho >> '{log}'\nexec '{real}' \"$@\"\n")
    wrapper.chmod(0o755)
    return bin_dir, log


def test_no_credential_value_in_logs_records_or_argv(publish_env, qcow2_image, tmp_path):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
    publish_env.fail_next_imports = 0
    bin_dir, qemu_img_argv = recording_qemu_img(tmp_path)
    argv = [sys.executable, "-m", "eulerpub", "--debug", "publish", "--cloud", "aws", "--image",
            str(qcow2_image.path), "--arch", "aarch64", "--region", "us-east-1", "--copy-to", "eu-west-1",
            "--share", "210987654321", "--upload", "s3", "--bucket", "images", "--keep-object"]
    env = subprocess_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen_argv = []
    while proc.poll() is None:  # sample the argv of the run and of every tool it starts (qemu-img)
        for pid in (proc.pid, *descendants(proc.pid)):
            seen_argv.append(argv_of(pid))
        time.sleep(0.01)
    out, err = proc.communicate()

    assert proc.returncode == 0, err.decode()
    tool_argv = qemu_img_argv.read_bytes().splitlines()
    assert any(b"\0convert\0" in a for a in tool_argv), "the conversion ran through the recording qemu-img"
    assert any(b"eulerpub" in a and b"publish" in a for a in seen_argv), "eulerpub's own argv was sampled"
    assert b"+ qemu-img" in err, "--debug logs every command eulerpub runs"
    written = [p.read_bytes() for root in (tmp_path, Path(os.environ["EULERPUB_CACHE_DIR"]))
               for p in root.rglob("*") if p.is_file() and p.stat().st_size < 10_000_000]
    assert any(b'"schema_version"' in blob for blob in written), "the journals were scanned"
    for secret in SECRETS:
        needle = secret.encode()
        assert needle not in out and needle not in err
        assert not any(needle in a for a in seen_argv)
        assert not any(needle in a for a in tool_argv)
        assert not any(needle in blob for blob in written)
