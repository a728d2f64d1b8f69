"""A release against local clouds: two cells (AWS on moto, Tencent on the CVM emulator with COS on moto) from a
small synthetic build record (no DIB build), the index it writes, a re-run that creates nothing, the boot-test
gate, and `prune --keep 1` after three publishes."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import boto3
import pytest

from eulerpub.bootcheck import RESULT_NAME as BOOT_RESULT_NAME
from eulerpub.clouds.base import WaitParams
from eulerpub.manifest import Artifact, BaseImage, BuildRecord, write_json_atomic, write_record
from eulerpub.profiles import load_profile
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import make_plan
from eulerpub.release.runner import BootTest, Status, Steps, run_cells
from eulerpub.release.wiring import ExistingBuilds, Publisher
from tests.disks import hybrid_head
from tests.emulators.cvm import CvmEmulator

FAST = WaitParams(timeout=120, interval=0.02)  # moto and the emulator move jobs on per look, not in time
MiB = 1024 * 1024
IMAGE_SIZE = 8 * MiB
RELEASE = "24.03-LTS-SP1"
COS_BUCKET = "eulerpub-1250000000"
_COS_URL = re.compile(r"^https://(?P<bucket>[^.]+)\.cos\.[^/]+\.myqcloud\.com/(?P<key>.+)$")

PROFILE = f"""
description: release integration test profile
releases: [{RELEASE}]
arches: [x86_64, aarch64]
formats: [raw, qcow2]
clouds:
  aws: {{upload: ebs, format: raw}}
  tencent: {{format: qcow2}}
"""

RELEASE_YAML = f"""
concurrency: 2
profiles: [itest]
releases: [{RELEASE}]
arches: [x86_64]
clouds:
  aws: {{regions: [us-east-1], copy_to: [eu-west-1]}}
  tencent: {{regions: [ap-guangzhou], bucket: {COS_BUCKET}}}
"""


def make_build(build_dir: Path, arch: str, *, tag: str = "a", passed: bool | None = True) -> Path:
    """A build record with a small raw disk (a few non-zero blocks) and its qcow2, like `eulerpub build` writes."""
    build_id = hashlib.sha256(f"{arch}-{tag}".encode()).hexdigest()[:16]
    directory = build_dir / build_id
    directory.mkdir(parents=True)
    raw = directory / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(IMAGE_SIZE)
        handle.write(f"eulerpub {arch} {tag}".encode() * 1000)
        handle.seek(5 * MiB)
        handle.write(bytes(range(256)) * 64)
        handle.seek(0)
        handle.write(hybrid_head(IMAGE_SIZE))  # a hybrid build's partition table: publish registers what it allows
    qcow2 = directory / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    artifacts = [Artifact(format=fmt, path=path.name, size=path.stat().st_size, virtual_size=IMAGE_SIZE,
                          sha256=hashlib.sha256(path.read_bytes()).hexdigest())
                 for fmt, path in (("raw", raw), ("qcow2", qcow2))]
    record = BuildRecord(build_id=build_id, profile="itest", release=RELEASE, arch=arch,
                         base=BaseImage(url="http://mirror.invalid/base.qcow2.xz", sha256="0" * 64),
                         elements_hash="e" * 64, elements=["openeuler", "vm"], artifacts=artifacts,
                         image_name=f"openEuler-{RELEASE}-{arch}-itest-20250601-{tag}")
    path = write_record(directory, record)
    if passed is not None:  # what the CI build job leaves beside a build whose boot test passed
        write_json_atomic(directory / BOOT_RESULT_NAME, {"build_id": build_id, "passed": passed})
    return path


@pytest.fixture
def clouds(aws_env, monkeypatch, tmp_path):
    """moto (AWS, and S3 standing in for COS) and the CVM emulator checking the COS objects it imports."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=COS_BUCKET)

    def cos_object_exists(url: str) -> bool:
        match = _COS_URL.match(url)
        if match is None:
            return False
        found = s3.list_objects_v2(Bucket=match["bucket"], Prefix=match["key"]).get("Contents", [])
        return any(o["Key"] == match["key"] for o in found)

    with CvmEmulator(regions=("ap-guangzhou", "ap-shanghai"), object_exists=cos_object_exists) as cvm:
        monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", cvm.secret_id)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", cvm.secret_key)
        monkeypatch.setenv("EULERPUB_TENCENT_CVM_ENDPOINT", f"http://{cvm.endpoint}")
        monkeypatch.setenv("EULERPUB_TENCENT_COS_ENDPOINT", aws_env.url)
        monkeypatch.setenv("EULERPUB_POLL_INTERVAL", "0.02")
        profiles = tmp_path / "profiles"
        profiles.mkdir()
        (profiles / "itest.yaml").write_text(PROFILE)
        monkeypatch.setenv("EULERPUB_PROFILES_PATH", str(profiles))
        (tmp_path / "release.yaml").write_text(RELEASE_YAML)
        monkeypatch.chdir(tmp_path)
        yield aws_env, cvm
        assert not cvm.crashes, cvm.crashes[0]


def amis(region: str) -> dict[str, dict]:
    return {i["ImageId"]: i for i in boto3.client("ec2", region_name=region).describe_images(Owners=["self"])["Images"]}


def snapshots(region: str) -> set[str]:
    found = boto3.client("ec2", region_name=region).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return {s["SnapshotId"] for s in found}


def test_two_cell_release_writes_the_index_and_a_re_run_creates_nothing(cli, clouds, tmp_path):
    moto, cvm = clouds
    record_path = make_build(tmp_path / "build", "x86_64")
    record = json.loads(record_path.read_text())

    first = cli("release", "--no-build", "--json")
    assert first.exit_code == 0, first.stderr
    cells = json.loads(first.stdout)["cells"]
    assert [(c["cloud"], c["status"]) for c in cells] == [("aws", "published"), ("tencent", "published")]
    assert all(image["new"] for c in cells for image in c["images"])

    index = json.loads((tmp_path / "releases" / "index.json").read_text())
    placed = index["images"]["itest"][RELEASE]["x86_64"]
    assert set(placed) == {"aws", "tencent"}
    assert set(placed["aws"]) == {"us-east-1", "eu-west-1"} and set(placed["tencent"]) == {"ap-guangzhou"}
    shas = {a["format"]: a["sha256"] for a in record["artifacts"]}
    for region, entry in placed["aws"].items():
        ami = amis(region)[entry["image_id"]]
        assert ami["Name"] == entry["name"] == f"openEuler-{RELEASE}-x86_64-itest-20250601-a"
        assert entry["build_id"] == record["build_id"] and entry["artifact_sha256"] == shas["raw"]
        assert entry["created"]
    tencent = placed["tencent"]["ap-guangzhou"]
    assert tencent["image_id"] in {image.id for image in cvm.images.values()}
    assert tencent["artifact_sha256"] == shas["qcow2"]
    readme = (tmp_path / "releases" / "README.md").read_text()
    assert readme.count("| itest |") == 3
    for cloud, region in (("aws", "eu-west-1"), ("tencent", "ap-guangzhou")):
        listed = cli("images", "list", "--cloud", cloud, "--region", region, "--profile", "itest", "--json")
        assert listed.exit_code == 0, listed.stderr
        assert [(r["image_id"], r["current"], r["build_id"]) for r in json.loads(listed.stdout)] == [
            (placed[cloud][region]["image_id"], True, record["build_id"])]

    images_before = {r: set(amis(r)) for r in ("us-east-1", "eu-west-1")}
    tencent_before = set(cvm.images)
    imports_before = len(cvm.calls("ImportImage"))
    index_before = (tmp_path / "releases" / "index.json").read_text()

    again = cli("release", "--no-build", "--json")
    assert again.exit_code == 0, again.stderr
    cells = json.loads(again.stdout)["cells"]
    assert not any(image["new"] for c in cells for image in c["images"])
    assert {r: set(amis(r)) for r in ("us-east-1", "eu-west-1")} == images_before
    assert set(cvm.images) == tencent_before and len(cvm.calls("ImportImage")) == imports_before
    assert not moto.calls("StartSnapshot", region="us-east-1")[1:]  # one EBS upload, ever
    assert (tmp_path / "releases" / "index.json").read_text() == index_before


def test_a_cell_whose_boot_test_fails_is_not_published(clouds, tmp_path):
    _, cvm = clouds
    build_dir = tmp_path / "build"
    make_build(build_dir, "x86_64", passed=None)
    make_build(build_dir, "aarch64", passed=None)
    profiles = {"itest": load_profile("itest")}
    existing = ExistingBuilds(build_dir)
    steps = Steps(find_build=existing.find, build=existing.refuse,
                  boot_test=lambda built: BootTest(built.record.arch == "x86_64", "cloud-init: status: error"),
                  publish=Publisher(profiles, wait=FAST))
    cells = [Cell("itest", RELEASE, arch, cloud, region, bucket=bucket)
             for arch in ("x86_64", "aarch64")
             for cloud, region, bucket in (("aws", "us-east-1", None), ("tencent", "ap-guangzhou", COS_BUCKET))]
    results = run_cells(make_plan(cells, 2), steps)
    assert {(r.cell.arch, r.cell.cloud): r.status for r in results} == {
        ("x86_64", "aws"): Status.PUBLISHED, ("x86_64", "tencent"): Status.PUBLISHED,
        ("aarch64", "aws"): Status.TEST_FAILED, ("aarch64", "tencent"): Status.TEST_FAILED}
    arches = {tags["Value"] for ami in amis("us-east-1").values() for tags in ami.get("Tags", [])
              if tags["Key"] == "eulerpub:arch"}
    assert arches == {"x86_64"}
    assert len(cvm.images) == 1  # one import; the preflight's ImportImage(DryRun=True) calls create nothing
    assert len([c for c in cvm.calls("ImportImage") if not (c.body or {}).get("DryRun")]) == 1


def test_prune_keep_one_after_three_publishes_deletes_two_images_and_their_snapshots(cli, clouds, tmp_path):
    build_dir = tmp_path / "build"
    profiles = {"itest": load_profile("itest")}
    publish = Publisher(profiles, wait=FAST)
    cell = Cell("itest", RELEASE, "x86_64", "aws", "us-east-1")
    published = []
    for tag in ("r1", "r2", "r3"):
        path = make_build(build_dir / tag, "x86_64", tag=tag)
        built = ExistingBuilds(path.parent.parent).find(BuildKey("itest", RELEASE, "x86_64"))
        published.append(publish(cell, built).images[0].image_id)
    other = make_build(build_dir / "other", "aarch64", tag="keep")  # another series: never part of the count
    publish(Cell("itest", RELEASE, "aarch64", "aws", "us-east-1"), ExistingBuilds(other.parent.parent).find(
        BuildKey("itest", RELEASE, "aarch64")))

    ec2 = boto3.client("ec2", region_name="us-east-1")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    foreign_snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]  # not eulerpub's
    before_images = amis("us-east-1")
    before_snapshots = snapshots("us-east-1")
    assert len(before_images) == 4
    doomed = published[:2]
    doomed_snapshots = {m["Ebs"]["SnapshotId"] for i in doomed for m in before_images[i]["BlockDeviceMappings"]}

    dry = cli("prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1")
    assert dry.exit_code == 0, dry.stderr
    assert amis("us-east-1").keys() == before_images.keys()

    result = cli("prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(d["id"] for d in report["deleted"]) == sorted(doomed)
    after = amis("us-east-1")
    assert set(after) == set(before_images) - set(doomed)
    assert published[2] in after
    assert snapshots("us-east-1") == before_snapshots - doomed_snapshots
    assert foreign_snapshot in snapshots("us-east-1")
