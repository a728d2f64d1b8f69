"""The latency mode of `make bench`: eulerpub where its users are, far from the mirror and the clouds.

Run alone with `make bench PYTEST_ARGS="-k wan"` (a few minutes). Each test prints ratios measured in the same
run; asserts only correctness (right bytes, every object whole, every image made), never timing. Links are
emulated by tests/bench/wan.py (a per-connection delaying, rate-capping TCP proxy in its own process: this
kernel has no netem, see there). The machine is shared: trust ratios within a run, not absolute times.

- fetch:   `eulerpub fetch` (default connections) vs `curl | tee x.xz | xz -dc` + `sha256sum x.xz`, through
           40 ms RTT and 4 MB/s per connection (a far mirror's per-connection limit).
- upload:  eulerpub's S3 multipart uploader (also with CRC32 in place of its SHA-256 per part) vs boto3's
           `upload_file` defaults, at 40 ms RTT and 4 MB/s per connection, to s3rver (npm, installed on first
           use) and to moto; each in a child process that reports its own wall and CPU time around the upload
           call; every object is read back and its sha256 compared with the file's.
- convert: `convert.convert_all` (every format at once) vs the sum of sequential `qemu-img convert` runs.
- release: 12 cells with 3 copy regions each vs 1 cell, through the real release runner and publish core on
           the in-memory cloud with 100 ms added to every adapter call (one call stands for one API request).
- publish huawei / tencent: `eulerpub publish` (a child process: the real adapters and SDKs) to the IMS or
           CVM emulator and moto's S3 as OBS/COS, every endpoint behind its own 100 ms RTT link: one region vs
           the same with 2 copy regions, with the API calls and object-store requests each made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eulerpub import convert
from eulerpub.manifest import Artifact, BaseImage, BuildRecord, sha256_file, write_record
from eulerpub.profiles import Profile
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import make_plan
from eulerpub.release.runner import BootTest, BuiltImage, Status, Steps, run_cells
from eulerpub.release.wiring import Publisher
from tests.bench.wan import WanLink
from tests.disks import hybrid_head
from tests.mirror import MirrorServer, make_qcow2_like, publish_image
from tests.unit.fake_cloud import FakeAdapter, FakeCloud

MiB = 1 << 20
RTT = 0.040            # seconds: a mirror or a cloud region a continent away
MIRROR_RATE = 4e6      # bytes/s per connection: what openEuler's mirrors often give a connection from abroad
FETCH_MIB = int(os.environ.get("EULERPUB_BENCH_WAN_MIB", "160"))  # image size; its .xz is about 40% of it
UPLOAD_MIB = int(os.environ.get("EULERPUB_BENCH_WAN_UPLOAD_MIB", "128"))
CONVERT_MIB = int(os.environ.get("EULERPUB_BENCH_CONVERT_MIB", "512"))
API_DELAY = 0.100      # seconds added to every cloud call in the release bench
RELEASE, ARCH = "24.03-LTS-SP1", "x86_64"
EULERPUB = Path(sys.executable).with_name("eulerpub")

RESULTS: dict[str, str] = {}


def _record(name: str, line: str) -> None:
    RESULTS[name] = line
    print(f"\n{name}: {line}")


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


# ---------------------------------------------------------------------------------------------------------
# fetch


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("xz")), reason="needs curl and xz")
def test_wan_fetch_vs_curl_and_xz(tmp_path):
    source = make_qcow2_like(tmp_path / "image.qcow2", FETCH_MIB * MiB, seed=3)
    published = publish_image(tmp_path / "mirror", RELEASE, ARCH, source)
    expected = sha256_file(source)
    xz_bytes = published.xz_path.stat().st_size
    times: dict[str, float] = {}
    proxy_cpu: dict[str, float] = {}
    with MirrorServer(tmp_path / "mirror") as mirror, WanLink(mirror.url, rtt=RTT, rate=MIRROR_RATE) as link:
        for name, extra in (("eulerpub", []), ("eulerpub --connections 1", ["--connections", "1"])):
            env = {**os.environ, "EULERPUB_MIRROR": link.url, "EULERPUB_CACHE_DIR": str(tmp_path / name[-1])}
            before = link.cpu_seconds()
            seconds, out = _run([str(EULERPUB), "fetch", "-r", RELEASE, "-a", ARCH, "--json", *extra], env)
            proxy_cpu[name] = link.cpu_seconds() - before
            assert sha256_file(Path(json.loads(out)["path"])) == expected
            times[name] = seconds
        work = tmp_path / "curl"
        work.mkdir()
        script = (f'curl -sf "{link.url}{published.url_path}" | tee "{work}/x.xz" | xz -dc > "{work}/x.qcow2" '
                  f'&& sha256sum "{work}/x.xz"')
        before = link.cpu_seconds()
        times["curl+xz+sha256sum"], out = _run(["bash", "-o", "pipefail", "-c", script])
        proxy_cpu["curl"] = link.cpu_seconds() - before
        assert out.split()[0] == published.sha256 and sha256_file(work / "x.qcow2") == expected
    _record("fetch", f"{xz_bytes / MiB:.0f} MiB .xz at {RTT * 1000:.0f} ms RTT, {MIRROR_RATE / 1e6:.0f} MB/s per "
            f"connection: eulerpub {times['eulerpub']:.1f} s, eulerpub --connections 1 "
            f"{times['eulerpub --connections 1']:.1f} s, curl|xz -dc + sha256sum {times['curl+xz+sha256sum']:.1f} s; "
            f"speed-up over curl {times['curl+xz+sha256sum'] / times['eulerpub']:.2f}x (goal >= 3x); the link's own "
            f"CPU: {', '.join(f'{k} {v:.1f} s' for k, v in proxy_cpu.items())}")


# ---------------------------------------------------------------------------------------------------------
# S3 upload

UPLOAD_RATE = 4e6  # bytes/s per connection: a TCP flow at 40 ms RTT with 0.01% loss (Mathis et al.: MSS / (RTT x
# sqrt(loss)) is 1460 B / (40 ms x sqrt(1e-4)), about 3.7 MB/s); one connection never fills a far region's link
S3RVER = "s3rver@3.7.1"  # npm: a Node S3 server, much faster than moto's one Python process; stores what it is sent
S3RVER_KEY = "S3RVER"  # its fixed access key and secret

_UPLOADER = """
import json, sys, time
from pathlib import Path
path, bucket, key, sha, who = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
if who.startswith("eulerpub"):
    from eulerpub.clouds import objectstore
    from eulerpub.clouds.base import Checkpoint
    # "eulerpub crc32": no SHA-256 of ours per part, so botocore sends its default CRC32 (boto3 >= 1.36)
    settings = objectstore.StoreSettings(cloud="aws", region="us-east-1", checksum_sha256=not who.endswith("crc32"))
    client = objectstore.make_store_client(settings)
    def upload():
        objectstore.upload_file(client, settings, bucket, key, path, size=path.stat().st_size, sha256=sha,
                                checkpoint=Checkpoint(), progress=lambda n: None)
else:
    import boto3
    client = boto3.client("s3", region_name="us-east-1")
    def upload():
        client.upload_file(str(path), bucket, key)
wall, cpu = time.perf_counter(), time.process_time()
upload()
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


@contextlib.contextmanager
def _s3rver(directory: Path):
    """s3rver on an ephemeral port, installed into the bench's cache with npm on first use; None without npm."""
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eulerpub-bench" / "s3rver"
    binary = prefix / "node_modules" / ".bin" / "s3rver"
    if not binary.exists() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", S3RVER],
                       check=True, capture_output=True)
    if not binary.exists():
        yield None
        return
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory.mkdir()
    server = subprocess.Popen([str(binary), "-d", str(directory), "-a", "127.0.0.1", "-p", str(port), "--silent"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("s3rver did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("server", ["s3rver", "moto"])
def test_wan_s3_upload_vs_boto3_upload_file(server, moto, tmp_path):
    import boto3
    from botocore.config import Config

    from tests.fixtures_moto import aws_environment

    path = tmp_path / "disk.raw"
    path.write_bytes(random.Random(1).randbytes(UPLOAD_MIB * MiB))  # incompressible: no shortcut for anyone
    sha = sha256_file(path)
    with contextlib.ExitStack() as stack:
        if server == "moto":
            env = {**os.environ, **aws_environment(moto)}
        else:
            url = stack.enter_context(_s3rver(tmp_path / "s3rver"))
            if url is None:
                pytest.skip("needs npm (s3rver)")
            env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": S3RVER_KEY,
                   "AWS_SECRET_ACCESS_KEY": S3RVER_KEY, "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="bench")
        runs: dict[str, list[dict[str, float]]] = {}
        link = stack.enter_context(WanLink(env["AWS_ENDPOINT_URL"], rtt=RTT, rate=UPLOAD_RATE))
        for who in ("eulerpub", "boto3", "eulerpub crc32") * 2:  # alternating: the machine's load drifts
            _, out = _run([sys.executable, "-c", _UPLOADER, str(path), "bench", who, sha, who],
                          {**env, "AWS_ENDPOINT_URL": link.url})
            digest = hashlib.sha256(s3.get_object(Bucket="bench", Key=who)["Body"].read()).hexdigest()
            assert digest == sha, f"{who}'s object on {server} is not the file"
            s3.delete_object(Bucket="bench", Key=who)  # else eulerpub's next run finds it complete and skips
            runs.setdefault(who, []).append(json.loads(out))
    gib = UPLOAD_MIB / 1024
    best = {who: min(r["wall"] for r in found) for who, found in runs.items()}
    cpu = {who: sum(r["cpu"] for r in found) / len(found) / gib for who, found in runs.items()}
    _record(f"upload {server}", f"{UPLOAD_MIB} MiB to {server} at {RTT * 1000:.0f} ms RTT, {UPLOAD_RATE / 1e6:.0f} "
            f"MB/s per connection, best of 2: eulerpub {best['eulerpub']:.1f} s ({cpu['eulerpub']:.1f} CPU s/GiB, "
            f"SHA-256 per part), eulerpub with CRC32 {best['eulerpub crc32']:.1f} s ({cpu['eulerpub crc32']:.1f} "
            f"CPU s/GiB), boto3 upload_file {best['boto3']:.1f} s ({cpu['boto3']:.1f} CPU s/GiB); speed-up "
            f"{best['boto3'] / best['eulerpub']:.2f}x (goal >= 1.2x)")


# ---------------------------------------------------------------------------------------------------------
# conversion


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
def test_parallel_conversion_vs_sequential_runs(tmp_path):
    disk = tmp_path / "disk.raw"
    rng = random.Random(5)
    text = bytes(b"etaoinshrdlu /.\n"[b % 16] for b in range(256))
    with open(disk, "wb") as out:  # a root filesystem's mix: text-like data, some random, holes
        out.truncate(CONVERT_MIB * MiB)
        out.write(hybrid_head(CONVERT_MIB * MiB))
        for offset in range(MiB, CONVERT_MIB * MiB, 4 * MiB):
            out.seek(offset)
            out.write(rng.randbytes(MiB // 4) + rng.randbytes(MiB + MiB // 2).translate(text))
    formats = ("qcow2", "vmdk", "vhd")  # what a build converts; its raw is DIB's file, moved
    sequential: dict[str, float] = {}
    for fmt in formats:
        start = time.perf_counter()
        convert.convert(disk, tmp_path / f"seq.{fmt}", fmt)
        sequential[fmt] = time.perf_counter() - start
    start = time.perf_counter()
    made = convert.convert_all(disk, {fmt: tmp_path / f"par.{fmt}" for fmt in formats})
    together = time.perf_counter() - start
    for fmt in formats:
        assert made[fmt].stat().st_size > 0
    total = sum(sequential.values())
    _record("convert", f"{CONVERT_MIB} MiB disk to {', '.join(formats)} on {os.cpu_count()} cores: sequential "
            f"{total:.1f} s ({', '.join(f'{f} {s:.1f}' for f, s in sequential.items())}), convert_all "
            f"{together:.1f} s; speed-up {total / together:.2f}x")


# ---------------------------------------------------------------------------------------------------------
# release fan-out

SOURCE, COPIES = "us-east-1", ("us-west-2", "eu-west-1", "ap-southeast-1")


class SlowAdapter:
    """The in-memory cloud, with every call taking API_DELAY (as one request to a far region does)."""

    def __init__(self, cloud: FakeCloud, counts: Counter) -> None:
        self._inner, self._counts = FakeAdapter(cloud), counts
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self._lock:
                self._counts[name] += 1
            time.sleep(API_DELAY)
            with self._lock:  # the in-memory cloud is not thread-safe; the wait above overlaps freely
                return value(*args, **kwargs)
        return call


def _builds(tmp_path: Path, keys: list[BuildKey]) -> dict[BuildKey, BuiltImage]:
    builds = {}
    for key in keys:
        directory = tmp_path / f"{key.release}-{key.arch}"
        directory.mkdir(parents=True)
        disk = directory / "disk.raw"
        disk.write_bytes(hybrid_head(1 << 20))
        record = BuildRecord(build_id=f"b-{key.release}-{key.arch}", profile=key.profile, release=key.release,
                             arch=key.arch, base=BaseImage(url="http://mirror/base", sha256="0" * 64),
                             elements_hash="e", elements=["vm"],
                             image_name=f"openEuler-{key.release}-{key.arch}-min-20250601",
                             artifacts=[Artifact(format="raw", path="disk.raw", size=1 << 20, virtual_size=1 << 20,
                                                 sha256=sha256_file(disk))])
        builds[key] = BuiltImage(write_record(directory, record), record, reused=True)
    return builds


def _release(tmp_path: Path, cells: int, concurrency: int) -> tuple[float, Counter]:
    releases = [f"24.{n:02d}" for n in range(1, 7)]
    keys = [BuildKey("min", r, a) for r in releases for a in ("x86_64", "aarch64")][:cells]
    profiles = {"min": Profile(name="min", releases=releases, arches=["x86_64", "aarch64"])}
    builds = _builds(tmp_path, keys)
    cloud, counts = FakeCloud(regions=(SOURCE, *COPIES), part_size=1 << 20), Counter()
    steps = Steps(find_build=builds.get, build=lambda key: builds[key], boot_test=lambda b: BootTest(True),
                  publish=Publisher(profiles, adapter_for=lambda name: SlowAdapter(cloud, counts)))
    plan = make_plan([Cell("min", k.release, k.arch, "aws", SOURCE, COPIES) for k in keys], concurrency)
    start = time.perf_counter()
    results = run_cells(plan, steps)
    seconds = time.perf_counter() - start
    assert [r.status for r in results] == [Status.PUBLISHED] * cells, [r.detail for r in results]
    assert all(len(r.images) == 1 + len(COPIES) for r in results)
    return seconds, counts


def test_release_of_12_cells_vs_1_cell_at_100ms_per_call(tmp_path):
    one, one_counts = _release(tmp_path / "one", 1, 1)
    twelve, counts = _release(tmp_path / "twelve", 12, 12)
    default, _ = _release(tmp_path / "default", 12, 4)  # release.yaml's default concurrency
    per_cell = sum(counts.values()) / 12
    assert sum(one_counts.values()) == per_cell  # every cell makes the same calls as a lone one
    _record("release", f"{len(COPIES)} copy regions per cell, {API_DELAY * 1000:.0f} ms per call, {per_cell:.0f} "
            f"calls per cell ({', '.join(f'{k} {v // 12}' for k, v in sorted(counts.items()))}): 1 cell "
            f"{one:.1f} s, 12 cells at concurrency 12 {twelve:.1f} s ({twelve / one:.2f}x, goal <= 1.5x), at "
            f"concurrency 4 (the default) {default:.1f} s ({default / one:.2f}x)")


# ---------------------------------------------------------------------------------------------------------
# Huawei and Tencent through the link: the real adapters and SDKs, the IMS/CVM emulators and moto as OBS/COS

CLOUD_RTT = 0.100  # seconds: a cloud region across an ocean


def _publish_through_link(cloud: str, moto, images: dict[str, Path], workdir: Path, copies: int) -> dict[str, Any]:
    """One `eulerpub publish` in a child process, every cloud endpoint (IMS per region or CVM, and the object
    store) behind its own WanLink; returns the wall time and the requests each server saw."""
    from tests.emulators import CvmEmulator, ImsEmulator, Timing
    from tests.integration.huawei import conftest as huawei
    from tests.integration.sdkclouds import POLL_SECONDS, object_exists, s3
    from tests.integration.sdkclouds import RELEASE as IMAGE_RELEASE
    from tests.integration.tencent import conftest as tencent

    moto.reset()
    side = huawei if cloud == "huawei" else tencent
    s3(moto, "us-east-1").create_bucket(Bucket=side.BUCKET)
    regions = side.REGIONS[:1 + copies]
    if cloud == "huawei":
        emulator = ImsEmulator(regions=side.REGIONS, timing=Timing(polls=2),
                               object_exists=lambda bucket, key: object_exists(moto, side.REGIONS[0], bucket, key))
    else:
        emulator = CvmEmulator(regions=side.REGIONS, timing=Timing(polls=2),
                               object_exists=lambda url: tencent.cos_object_exists(moto, url))
    with contextlib.ExitStack() as stack:
        stack.enter_context(emulator)
        endpoints = dict(emulator.endpoints) if cloud == "huawei" else {"cvm": emulator.url}
        links = {name: stack.enter_context(WanLink(url, rtt=CLOUD_RTT)).url for name, url in endpoints.items()}
        store = stack.enter_context(WanLink(moto.url, rtt=CLOUD_RTT)).url
        env = {**os.environ, "EULERPUB_POLL_INTERVAL": POLL_SECONDS}
        if cloud == "huawei":
            env |= {"HUAWEICLOUD_SDK_AK": emulator.ak, "HUAWEICLOUD_SDK_SK": emulator.sk,
                    "EULERPUB_HUAWEI_OBS_ENDPOINT": store}
            for region, url in links.items():
                name = region.replace("-", "_").upper()
                env |= {f"HUAWEICLOUD_SDK_REGION_IMS_{name}": url, f"HUAWEICLOUD_SDK_REGION_IAM_{name}": url,
                        f"HUAWEICLOUD_SDK_PROJECT_ID_{name}": emulator.projects[region]}
            extra = ["--agency", huawei.AGENCY]
        else:
            env |= {"TENCENTCLOUD_SECRET_ID": emulator.secret_id, "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
                    "EULERPUB_TENCENT_CVM_ENDPOINT": links["cvm"], "EULERPUB_TENCENT_COS_ENDPOINT": store}
            extra = []
        workdir.mkdir(parents=True)
        argv = [sys.executable, "-m", "eulerpub", "publish", "--cloud", cloud, "--image", str(images["qcow2"]),
                "--arch", "x86_64", "--release", IMAGE_RELEASE, "--region", regions[0],
                *[a for region in regions[1:] for a in ("--copy-to", region)], "--bucket", side.BUCKET,
                "--build-dir", str(workdir / "build"), "--wait-timeout", "5", "--json", *extra]
        start = time.perf_counter()
        result = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        assert result.returncode == 0, result.stderr[-2000:]
        rows = {row["region"]: row for row in json.loads(result.stdout)["regions"]}
        assert sorted(rows) == sorted(regions) and all(row["status"] == "done" for row in rows.values())
        made = {image.region for image in emulator.images.values()
                if getattr(image, "status", None) == "active" or getattr(image, "state", None) == "NORMAL"}
        assert set(regions) <= made, made  # the image is in every region, as the cloud sees it
        assert not emulator.crashes, emulator.crashes[:1]
        return {"seconds": seconds, "api": len(emulator.requests),
                "store": sum(1 for r in moto.requests if r.service == "s3")}


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
@pytest.mark.parametrize("cloud", ["huawei", "tencent"])
def test_wan_huawei_and_tencent_publish_one_region_vs_two_copies(cloud, moto, tmp_path):
    from tests.integration.sdkclouds import make_images

    (tmp_path / "images").mkdir()
    images = make_images(tmp_path / "images")
    one = _publish_through_link(cloud, moto, images, tmp_path / "one", copies=0)
    copied = _publish_through_link(cloud, moto, images, tmp_path / "copies", copies=2)
    _record(f"publish {cloud}", f"{images['qcow2'].stat().st_size / MiB:.0f} MiB qcow2 through the real {cloud} "
            f"adapter to its emulator and moto's S3, each endpoint {CLOUD_RTT * 1000:.0f} ms RTT away: one region "
            f"{one['seconds']:.1f} s ({one['api']} API calls, {one['store']} object-store requests); with 2 copy "
            f"regions {copied['seconds']:.1f} s ({copied['api']} API calls, {copied['store']} object-store "
            f"requests): {copied['seconds'] / one['seconds']:.2f}x the one region")
