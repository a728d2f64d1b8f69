"""Hostile and broken image files never leave the machine (issue 9): publish to every cloud and upload path,
`eulerpub test`, fetch and the base extraction refuse them with one sentence, before anything is read or sent.

The hostile files point qemu at a host file holding a marker (a qcow2 backing file, an external data file), or
are a qcow2 named as raw; the broken ones are empty, text, a truncated qcow2 header, a raw disk without a
partition table. Each assertion is on what the cloud side received (moto's request log, its snapshots and
buckets, the IMS/CVM emulators' request logs) and on every file eulerpub wrote: none holds the marker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.emulators import CvmEmulator, EcsEmulator, ImsEmulator, Timing
from tests.integration.sdkclouds import object_keys, s3
from tests.mirror import publish_image

MiB = 1 << 20
RELEASE = "24.03-LTS-SP1"
MARKER = b"HOST-SECRET-c0ffee-"  # what the host file holds: it must not appear on any cloud or in any file we write
ROOT_D = Path(__file__).resolve().parents[2] / "elements/cloud-image-root/root.d/10-extract-cloud-image"


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


@pytest.fixture
def secret(tmp_path_factory) -> Path:
    """A host file (as /etc/passwd or an SSH key would be): 4 MiB of the marker, with an MBR signature so the
    disk it would become looks bootable and only the indirection can be the reason for a refusal."""
    path = tmp_path_factory.mktemp("host") / "secret"  # outside the test's directory, which is searched
    data = bytearray((MARKER * (4 * MiB // len(MARKER) + 1))[:4 * MiB])
    data[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(data))
    return path


def make_image(kind: str, directory: Path, secret: Path) -> Path:
    """One hostile or broken image, named like an openEuler image so the release is read from the name."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"openEuler-{RELEASE}-x86_64"
    if kind == "backing-file":
        path = directory / f"{stem}.qcow2"
        qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", path)
    elif kind == "data-file":
        path = directory / f"{stem}.qcow2"
        qemu_img("create", "-f", "qcow2", "-o", f"data_file={directory / 'scratch'},data_file_raw=on", path, "4M")
        qemu_img("amend", "-f", "qcow2", "-o", f"data_file={secret}", path)  # the guest disk is now the host file
    elif kind == "qcow2-named-raw":
        backing = directory / "inner.qcow2"
        qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", backing)
        path = directory / f"{stem}.raw"
        path.write_bytes(backing.read_bytes())
        backing.unlink()
    elif kind == "empty":
        path = directory / f"{stem}.raw"
        path.touch()
    elif kind == "text":
        path = directory / f"{stem}.qcow2"
        path.write_text("definitely an image\n")  # 20 bytes
    elif kind == "truncated-qcow2":
        good = directory / "good.qcow2"
        qemu_img("create", "-f", "qcow2", good, "4M")
        path = directory / f"{stem}.qcow2"
        path.write_bytes(good.read_bytes()[:64])
        good.unlink()
    elif kind == "no-partition-table":
        path = directory / f"{stem}.raw"
        with open(path, "wb") as handle:
            handle.truncate(4 * MiB)
            handle.write(os.urandom(64 << 10))
            handle.seek(510)
            handle.write(b"\0\0")
    else:
        raise AssertionError(kind)
    return path


HOSTILE = ("backing-file", "data-file", "qcow2-named-raw")
BROKEN = ("empty", "text", "truncated-qcow2", "no-partition-table")
EXPECTED = {"backing-file": "backing file", "data-file": "external data file", "qcow2-named-raw": "qcow2",
            "empty": "empty", "text": "text file", "truncated-qcow2": "truncated",
            "no-partition-table": "no partition table"}


def error_line(stderr: str) -> str:
    """The one `error:` sentence (status lines such as "fetching ..." may come before it), no traceback."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def assert_marker_nowhere(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert MARKER not in path.read_bytes(), f"{path} holds bytes of the host file"


# ---------------------------------------------------------------------------------------------------------
# The cloud side: moto for AWS (EBS direct or S3), the IMS and CVM emulators with moto as OBS/COS


def aws_resources(moto) -> tuple[set[str], set[str]]:
    """The snapshot and image ids moto's account holds (moto starts with its own public ones)."""
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url)
    return ({s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]},
            {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]})


@dataclass
class CloudSide:
    name: str
    args: tuple[str, ...]
    moto: object
    emulator: object | None
    bucket: str | None

    def __post_init__(self) -> None:
        self.resources = aws_resources(self.moto)
        self.baseline = len(self.moto.requests)  # requests made by the fixture itself (the bucket, the listing)

    def assert_received_nothing(self) -> None:
        moto = self.moto
        after = moto.requests[self.baseline:]
        assert after == [], f"{self.name}: the cloud side was called: {[r.action for r in after]}"
        if self.emulator is not None:
            assert self.emulator.requests == [], f"{self.name}: {[c.action for c in self.emulator.requests]}"
        assert aws_resources(moto) == self.resources, "no snapshot, no image"
        if self.bucket:
            assert object_keys(moto, "us-east-1", self.bucket) == [], "no object"


@pytest.fixture(params=["aws-ebs", "aws-s3", "huawei", "tencent", "alibaba"])
def cloud(request, aws_env, monkeypatch, tmp_path):
    moto = aws_env
    monkeypatch.setenv("EULERPUB_POLL_INTERVAL", "0.01")
    monkeypatch.chdir(tmp_path)
    name = request.param
    if name == "aws-ebs":
        yield CloudSide(name, ("--cloud", "aws", "--region", "us-east-1"), moto, None, None)
    elif name == "aws-s3":
        s3(moto, "us-east-1").create_bucket(Bucket="images")
        yield CloudSide(name, ("--cloud", "aws", "--region", "us-east-1", "--upload", "s3", "--bucket", "images"),
                        moto, None, "images")
    elif name == "huawei":
        with ImsEmulator(regions=("cn-north-4",), timing=Timing(polls=2)) as ims:
            env = {**ims.sdk_env(), "HUAWEICLOUD_SDK_AK": ims.ak, "HUAWEICLOUD_SDK_SK": ims.sk,
                   "EULERPUB_HUAWEI_OBS_ENDPOINT": moto.url}
            for region, project in ims.projects.items():
                env[f"HUAWEICLOUD_SDK_PROJECT_ID_{region.replace('-', '_').upper()}"] = project
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            s3(moto, "us-east-1").create_bucket(Bucket="eulerpub-images")
            yield CloudSide(name, ("--cloud", "huawei", "--region", "cn-north-4", "--bucket", "eulerpub-images"),
                            moto, ims, "eulerpub-images")
    elif name == "alibaba":
        with EcsEmulator(regions=("cn-hangzhou",), timing=Timing(polls=2)) as ecs:
            for key, value in {"ALIBABA_CLOUD_ACCESS_KEY_ID": ecs.access_key_id,
                               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ecs.access_key_secret,
                               "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                               "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true", "HOME": str(tmp_path),
                               "EULERPUB_ALIBABA_ECS_ENDPOINT": ecs.url, "EULERPUB_ALIBABA_RAM_ENDPOINT": ecs.url,
                               "EULERPUB_ALIBABA_OSS_ENDPOINT": moto.url}.items():
                monkeypatch.setenv(key, value)
            s3(moto, "us-east-1").create_bucket(Bucket="eulerpub-images")
            moto.md5_buckets.add("eulerpub-images")
            yield CloudSide(name, ("--cloud", "alibaba", "--region", "cn-hangzhou", "--bucket", "eulerpub-images"),
                            moto, ecs, "eulerpub-images")
    else:
        with CvmEmulator(regions=("ap-guangzhou",), timing=Timing(polls=2)) as cvm:
            for key, value in {"TENCENTCLOUD_SECRET_ID": cvm.secret_id, "TENCENTCLOUD_SECRET_KEY": cvm.secret_key,
                               "EULERPUB_TENCENT_CVM_ENDPOINT": cvm.url,
                               "EULERPUB_TENCENT_COS_ENDPOINT": moto.url}.items():
                monkeypatch.setenv(key, value)
            s3(moto, "us-east-1").create_bucket(Bucket="eulerpub-1250000000")
            yield CloudSide(name, ("--cloud", "tencent", "--region", "ap-guangzhou", "--bucket",
                                   "eulerpub-1250000000"), moto, cvm, "eulerpub-1250000000")


@pytest.mark.parametrize("dry_run", [False, True], ids=["publish", "dry-run"])
@pytest.mark.parametrize("kind", HOSTILE)
def test_publish_refuses_images_that_read_host_files(cli, cloud, secret, tmp_path, kind, dry_run):
    image = make_image(kind, tmp_path / "in", secret)
    public = ["--public"] if cloud.name.startswith("aws") else []  # the other clouds cannot publish publicly
    result = cli("publish", *cloud.args, "--image", image, "--arch", "x86_64", *public,
                 *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert EXPECTED[kind] in error_line(result.stderr)
    cloud.assert_received_nothing()
    assert_marker_nowhere(tmp_path / "in", Path(os.environ["EULERPUB_CACHE_DIR"]), Path.cwd())


@pytest.mark.parametrize("kind", BROKEN)
def test_publish_refuses_broken_images_before_spending(cli, cloud, secret, tmp_path, kind):
    image = make_image(kind, tmp_path / "in", secret)
    result = cli("publish", *cloud.args, "--image", image, "--arch", "x86_64")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert EXPECTED[kind] in error_line(result.stderr)
    cloud.assert_received_nothing()


def test_the_reported_case_exits_2_through_the_console_script(aws_env, tmp_path):
    """Issue 9's reproduction: a qcow2 backed by /etc/passwd, published with --public, in a child process."""
    image = tmp_path / "x.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", image, "1M")
    before = aws_resources(aws_env)
    aws_env.requests.clear()
    for extra in ([], ["--dry-run"]):
        result = subprocess.run(
            [sys.executable, "-m", "eulerpub", "publish", "--cloud", "aws", "--image", str(image), "--arch",
             "x86_64", "--release", RELEASE, "--region", "us-east-1", "--public", *extra],
            cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "has a backing file" in error_line(result.stderr)
    assert aws_env.requests == []
    assert aws_resources(aws_env) == before


def test_a_record_whose_raw_artifact_is_a_qcow2_is_refused(cli, aws_env, monkeypatch, secret, tmp_path):
    """A build record says raw; the file holds a qcow2 header with a backing file (its sha256 matches)."""
    from eulerpub.manifest import Artifact, BaseImage, BuildRecord, sha256_file, write_record

    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "build" / "0123456789abcdef"
    directory.mkdir(parents=True)
    hostile = make_image("qcow2-named-raw", directory, secret)
    disk = hostile.rename(directory / "disk.raw")
    record = BuildRecord(build_id="0123456789abcdef", profile="itest", release=RELEASE, arch="x86_64",
                         base=BaseImage(url="http://mirror.invalid/base.qcow2.xz", sha256="0" * 64),
                         elements_hash="0" * 64, elements=["cloud-image-root"],
                         artifacts=[Artifact(format="raw", path="disk.raw", size=disk.stat().st_size,
                                             virtual_size=4 * MiB, sha256=sha256_file(disk))])
    write_record(directory, record)
    result = cli("publish", "--cloud", "aws", "--region", "us-east-1", "--record", directory)
    assert result.exit_code == 2, result.stderr
    assert "starts with a qcow2 header" in error_line(result.stderr)
    assert aws_env.requests == []


# ---------------------------------------------------------------------------------------------------------
# eulerpub test, fetch, the base extraction


@pytest.mark.parametrize("kind", ["backing-file", "data-file", "qcow2-named-raw"])
def test_boot_test_refuses_before_any_overlay_or_vm(secret, tmp_path, kind):
    image = make_image(kind, tmp_path / "in", secret)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run([sys.executable, "-m", "eulerpub", "test", str(image), "--timeout", "5"],
                            env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert EXPECTED[kind] in error_line(result.stderr)
    assert list(scratch.iterdir()) == [], "no work directory, overlay or seed was made"


@pytest.mark.parametrize("kind", ["text", "backing-file", "data-file", "truncated-qcow2"])
def test_fetch_refuses_a_base_that_is_not_a_self_contained_qcow2(cli, mirror_env, secret, tmp_path, kind):
    """The mirror serves the file with a matching .sha256sum; the digest is right, the content is not a base."""
    source = make_image(kind, tmp_path / "in", secret)
    publish_image(mirror_env.root, RELEASE, "x86_64", source)
    result = cli("fetch", "--release", RELEASE, "--arch", "x86_64")
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert EXPECTED[kind] in line and "not cached" in line
    cache = Path(os.environ["EULERPUB_CACHE_DIR"])
    kept = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert kept == [], f"nothing may stay in the cache: {kept}"
    again = cli("fetch", "--release", RELEASE, "--arch", "x86_64")
    assert again.exit_code == 2, "a second fetch is refused again, not answered from a cache"


def run_root_d(image: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cache, target, work = tmp_path / "dib-cache", tmp_path / "target", tmp_path / "work"
    for directory in (cache, target, work):
        directory.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "TARGET_ROOT": str(target), "DIB_IMAGE_CACHE": str(cache),
           "DIB_LOCAL_IMAGE": str(image), "TMP_DIR": str(work), "DIB_EULER_ROOT_LABEL": "rootfs"}
    return subprocess.run(["bash", str(ROOT_D)], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["backing-file", "data-file", "text", "qcow2-named-raw"])
def test_base_extraction_refuses_a_base_that_reads_host_files(secret, tmp_path, kind):
    image = make_image(kind, tmp_path / "in", secret)
    result = run_root_d(image, tmp_path)
    assert result.returncode != 0
    assert "cloud-image-root: " in result.stderr
    assert "refusing" in result.stderr or "not a qcow2" in result.stderr
    assert "converting" not in result.stdout, "qemu-img never read the image"
    assert not list((tmp_path / "dib-cache").glob("*.tar")) and list((tmp_path / "target").iterdir()) == []
    assert_marker_nowhere(tmp_path / "dib-cache", tmp_path / "target", tmp_path / "work")


def test_base_extraction_accepts_a_self_contained_qcow2(tmp_path):
    """The control: a plain qcow2 passes the check and reaches the conversion (which then needs a real disk)."""
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(4 * MiB)
        handle.seek(510)
        handle.write(b"\x55\xaa")
    image = tmp_path / "base.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", raw, image)
    result = run_root_d(image, tmp_path)
    assert "converting" in result.stdout, result.stderr


def test_a_cached_base_that_is_not_a_qcow2_is_deleted_and_fetched_again(published_image):
    """A cache written before fetch inspected its images may hold anything under a verified digest."""
    from eulerpub.fetch import fetch_base

    first = fetch_base(RELEASE, "x86_64", progress=False)
    size = first.path.stat().st_size
    first.path.write_bytes((b"not a disk image\n" * (size // 17 + 1))[:size])  # same size: the index agrees
    published_image.mirror.clear_log()
    again = fetch_base(RELEASE, "x86_64", progress=False)
    assert not again.from_cache and again.path.read_bytes() == published_image.source.read_bytes()
    assert published_image.mirror.bytes_sent("*.qcow2.xz") > 0, "downloaded again"
