"""`make demo` (`python -m tests.demo`): eulerpub's main job on a machine with no cloud account and no route to
repo.openeuler.org.

It starts, in this process, what the tests use instead of the internet: the openEuler-layout mirror serving the
stand-in base image (tests/standin/, tests/mirror.py), moto's server as AWS with eulerpub's VM Import and EBS
extensions (tests/fixtures_moto.py), the Huawei IMS, Tencent CVM and Alibaba ECS emulators (tests/emulators/) and
moto's S3 as OBS, COS and OSS. Then it runs the real console script as a user would type it: `eulerpub build`,
`eulerpub test`, `eulerpub publish` to each cloud (with a copy to a second region and a share) and
`eulerpub release`. The commands get only endpoints, throwaway demo credentials and the stand-in's profile and
element directories, through the environment; their arguments are exactly what a user types. Everything lands
in ./demo-work/.

A second run reuses the cached stand-in and the unchanged build. The local clouds start empty on every run
(they live in this process), so the previous run's publish journals and release index are removed first; within
a run, `eulerpub release` publishes the same build to the same regions again and finds every image instead of
re-creating it (checked against the servers' request logs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PROFILE = "hpc-standin"  # tests/profiles/: the hpc profile on the stand-in base (element tests/elements/debian-standin)
DEFAULT_WORK = Path("demo-work")

# The demo's accounts on the local clouds: import region, copy region, who the image is shared with, bucket.
AWS = {"region": "us-east-1", "copy_to": "eu-west-1", "share": "210987654321"}
HUAWEI = {"region": "cn-north-4", "copy_to": "cn-east-3", "share": "0123456789abcdef0123456789abcdef",
          "bucket": "eulerpub-demo-obs", "agency": "ims-copy-agency"}  # the agency: ims.DEFAULT_AGENCIES
TENCENT = {"region": "ap-guangzhou", "copy_to": "ap-shanghai", "share": "100000000002",
           "bucket": "eulerpub-demo-1250000000"}  # COS bucket names end in the account's APPID
ALIBABA = {"region": "cn-hangzhou", "copy_to": "cn-shanghai", "share": "1000000000000002",
           "bucket": "eulerpub-demo-oss"}
CLOUDS = {"aws": AWS, "huawei": HUAWEI, "tencent": TENCENT, "alibaba": ALIBABA}

# Calls that create an image or start an upload, per server: the release step must make none of them.
CREATES = {"moto": ("StartSnapshot", "ImportSnapshot", "RegisterImage", "CopyImage"),
           "ims": ("CreateImage", "ImportImageQuick", "CopyImageCrossRegion"),
           "cvm": ("ImportImage", "SyncImages"),
           "ecs": ("ImportImage", "CopyImage")}

# Inherited variables the commands must not see: a developer's real credentials, profiles and endpoints.
LEAKY_PREFIXES = ("AWS_", "HUAWEICLOUD_", "TENCENTCLOUD_", "ALIBABA_CLOUD_", "EULERPUB_")
KEPT = ("EULERPUB_DEBUG", "EULERPUB_ACCEL")  # the user's own choices about logging and QEMU acceleration
SECRET_NAMES = ("AWS_SECRET_ACCESS_KEY", "HUAWEICLOUD_SDK_SK", "TENCENTCLOUD_SECRET_KEY",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET")

RELEASE_YAML = """\
# The demo's release matrix (written by tests/demo.py): the stand-in hpc build on the four local clouds,
# the same regions, copies and shares the publish steps used, so the release finds their images.
concurrency: 4
profiles: [{profile}]
releases: [{release}]
arches: [{arch}]
clouds:
  aws: {{regions: [{aws[region]}], copy_to: [{aws[copy_to]}], share: ['{aws[share]}'], public: false}}
  huawei: {{regions: [{huawei[region]}], copy_to: [{huawei[copy_to]}], share: ['{huawei[share]}'], public: false,
           bucket: {huawei[bucket]}, agency: {huawei[agency]}}}
  tencent: {{regions: [{tencent[region]}], copy_to: [{tencent[copy_to]}], share: ['{tencent[share]}'],
            public: false, bucket: {tencent[bucket]}}}
  alibaba: {{regions: [{alibaba[region]}], copy_to: [{alibaba[copy_to]}], share: ['{alibaba[share]}'],
            public: false, bucket: {alibaba[bucket]}}}
"""


class StepFailed(Exception):
    """A step did not finish; the message is the one line the demo ends with."""


class Interrupted(Exception):
    pass


# -- presentation -----------------------------------------------------------------------------------------------

def say(text: str = "") -> None:
    print(text, flush=True)


def shown(path: Path) -> str:
    """A path as the user can type it from where they ran `make demo`."""
    path = Path(path)
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd())) or "."
    return str(path)


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Tour:
    total: int
    number: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.number += 1
        self.current = title
        say()
        say(f"[{self.number}/{self.total}] {title}")
        began = time.monotonic()
        yield
        say(f"      ({duration(time.monotonic() - began)})")

    def where(self) -> str:
        return f"step {self.number}/{self.total} ({self.current})"


# -- the local world --------------------------------------------------------------------------------------------

@dataclass
class LocalClouds:
    moto: Any
    ims: Any
    cvm: Any
    ecs: Any
    env: dict[str, str]

    def creates(self) -> int:
        return (sum(len(self.moto.calls(a)) for a in CREATES["moto"])
                + sum(len(self.ims.calls(a)) for a in CREATES["ims"])
                + sum(len(self.cvm.calls(a)) for a in CREATES["cvm"])
                + sum(len(self.ecs.calls(a)) for a in CREATES["ecs"]))

    def crashes(self) -> list[str]:
        return [*self.ims.crashes, *self.cvm.crashes, *self.ecs.crashes]


@contextlib.contextmanager
def local_clouds() -> Iterator[LocalClouds]:
    """moto (AWS, and S3 standing in for OBS, COS and OSS), IMS, CVM and ECS emulators whose imports find the uploaded
    objects in moto, the demo buckets, and the environment that points the SDKs at all of them."""
    from tests.emulators import CvmEmulator, EcsEmulator, ImsEmulator, Timing
    from tests.fixtures_moto import aws_environment, running_moto_server
    from tests.integration.alibaba.conftest import oss_object_size
    from tests.integration.sdkclouds import object_exists, s3
    from tests.integration.tencent.conftest import cos_object_exists

    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(running_moto_server())
        store_region = "us-east-1"  # moto's S3 is one store; OBS and COS buckets live in it
        ims = stack.enter_context(ImsEmulator(
            regions=(HUAWEI["region"], HUAWEI["copy_to"]), timing=Timing(polls=2),
            object_exists=lambda bucket, key: object_exists(moto, store_region, bucket, key)))
        cvm = stack.enter_context(CvmEmulator(
            regions=(TENCENT["region"], TENCENT["copy_to"]), timing=Timing(polls=2),
            object_exists=lambda url: cos_object_exists(moto, url)))
        ecs = stack.enter_context(EcsEmulator(
            regions=(ALIBABA["region"], ALIBABA["copy_to"]), timing=Timing(polls=2),
            object_size=lambda bucket, key: oss_object_size(moto, bucket, key)))
        for bucket in (HUAWEI["bucket"], TENCENT["bucket"], ALIBABA["bucket"]):
            s3(moto, store_region).create_bucket(Bucket=bucket)
        moto.md5_buckets.add(ALIBABA["bucket"])  # OSS verifies Content-MD5 (cn-hangzhou is not an AWS region anyway)
        moto.oss_buckets.add(ALIBABA["bucket"])  # and takes user-metadata names of letters, digits and '-' only
        env = {
            **aws_environment(moto),
            "HUAWEICLOUD_SDK_AK": ims.ak, "HUAWEICLOUD_SDK_SK": ims.sk,
            **{f"HUAWEICLOUD_SDK_PROJECT_ID_{r.replace('-', '_').upper()}": p for r, p in ims.projects.items()},
            **ims.sdk_env(),
            "EULERPUB_HUAWEI_OBS_ENDPOINT": moto.url,
            "TENCENTCLOUD_SECRET_ID": cvm.secret_id, "TENCENTCLOUD_SECRET_KEY": cvm.secret_key,
            "EULERPUB_TENCENT_CVM_ENDPOINT": cvm.url,
            "EULERPUB_TENCENT_COS_ENDPOINT": moto.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ecs.access_key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ecs.access_key_secret,
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
            "EULERPUB_ALIBABA_ECS_ENDPOINT": ecs.url, "EULERPUB_ALIBABA_RAM_ENDPOINT": ecs.url,
            "EULERPUB_ALIBABA_OSS_ENDPOINT": moto.url,
        }
        yield LocalClouds(moto, ims, cvm, ecs, env)


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any cloud credential, endpoint or eulerpub setting it inherited (so a
    developer's real accounts are out of reach), plus the demo's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES) or k in KEPT}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}, **extra)
    return env


def print_environment(env: dict[str, str]) -> None:
    say("      The commands below get these variables (and nothing on their command lines):")
    for name in sorted(env):
        value = "<demo value, not shown>" if name in SECRET_NAMES else env[name]
        say(f"        {name}={value}")


def forget_previous_clouds(work: Path) -> list[Path]:
    """The journals and index of the previous run describe images in local clouds that died with it."""
    stale = [*work.glob("build/*/publish"), *work.glob("build/published"), work / "releases"]
    stale = [p for p in stale if p.exists()]
    for path in stale:
        shutil.rmtree(path)
    return stale


# -- running the real CLI ---------------------------------------------------------------------------------------

def eulerpub_executable() -> str:
    beside = Path(sys.executable).with_name("eulerpub")  # the venv's console script
    found = str(beside) if beside.exists() else shutil.which("eulerpub")
    if not found:
        raise StepFailed("the eulerpub console script is not installed (run `make venv`)")
    return found


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str]) -> None:
    """`eulerpub ARGS` as a child process, its output straight to the terminal. On Ctrl-C (which the terminal also
    sends to the command) the command gets time to clean up (unmounts, temporary files) before it is stopped."""
    say(f"      $ eulerpub {shlex.join(args)}")
    process = subprocess.Popen([eulerpub_executable(), *args], cwd=cwd, env=env)
    try:
        code = process.wait()
    except (KeyboardInterrupt, Interrupted):
        stop_child(process)
        raise
    if code != 0:
        raise StepFailed(f"`eulerpub {shlex.join(args)}` exited {code} (its output is above)")


def stop_child(process: subprocess.Popen[bytes], grace: float = 60.0) -> None:
    for send, wait in ((None, grace), (process.terminate, 20.0), (process.kill, 10.0)):
        if send is not None:
            send()
        try:
            process.wait(timeout=wait)
            return
        except (subprocess.TimeoutExpired, KeyboardInterrupt, Interrupted):
            continue


# -- the tour ---------------------------------------------------------------------------------------------------

def tour(t: Tour, work: Path, skip_boot: bool) -> int:
    from eulerpub.manifest import artifact_path, latest_record
    from tests.mirror import MirrorServer, publish_compressed
    from tests.standin import STANDIN_ARCH, STANDIN_VERSION, ensure_standin, test_cache_dir

    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    steps = t.total
    say(f"eulerpub demo: the main job, offline, on local servers; everything lands in {shown(work)}/")
    run: Callable[[list[str]], None]

    with contextlib.ExitStack() as stack:
        with t.step("The stand-in base image: a small Debian disk laid out like the official openEuler qcow2"):
            began = time.monotonic()
            standin = ensure_standin()
            how = "cached" if time.monotonic() - began < 5 else "built with diskimage-builder, cached for next time"
            say(f"      {shown(standin)}/ ({how})")

        with t.step("The local openEuler mirror (the layout of repo.openeuler.org)"):
            published = publish_compressed(work / "mirror", STANDIN_VERSION, STANDIN_ARCH, standin)
            mirror = stack.enter_context(MirrorServer(work / "mirror"))
            say(f"      {mirror.url}{published.url_path}  (sha256 {published.sha256[:16]}...)")

        with t.step("The local clouds"):
            clouds = stack.enter_context(local_clouds())
            say(f"      AWS           moto {clouds.moto.url}  (EC2, EBS direct, S3, IAM; VM Import added by the tests)")
            for region, url in clouds.ims.endpoints.items():
                say(f"      Huawei IMS    {url}  ({region})")
            say(f"      Tencent CVM   {clouds.cvm.url}  ({', '.join(clouds.cvm.regions)})")
            say(f"      Alibaba ECS   {clouds.ecs.url}  ({', '.join(clouds.ecs.regions)}; RAM's GetRole too)")
            say(f"      OBS, COS, OSS moto's S3 {clouds.moto.url}  "
                f"(buckets {HUAWEI['bucket']}, {TENCENT['bucket']}, {ALIBABA['bucket']})")
            if stale := forget_previous_clouds(work):
                say(f"      These clouds start empty: removed the last run's journals and index "
                    f"({', '.join(shown(p) for p in stale)})")
            demo_env = {
                **clouds.env,
                "EULERPUB_MIRROR": mirror.url,
                "EULERPUB_PROFILES_PATH": str(REPO / "tests" / "profiles"),
                "EULERPUB_ELEMENTS_PATH": str(REPO / "tests" / "elements"),
                # Keeps the stand-in out of your real cache and shares the tests' apt/.deb and DIB caches.
                "EULERPUB_CACHE_DIR": str(test_cache_dir() / "eulerpub-cache"),
                # The local clouds finish a job after a couple of looks; no need to wait 15 s between looks.
                "EULERPUB_POLL_INTERVAL": "1",
            }
            print_environment(demo_env)
            env = child_environment(demo_env)
            (work / "release.yaml").write_text(RELEASE_YAML.format(
                profile=PROFILE, release=STANDIN_VERSION, arch=STANDIN_ARCH, **CLOUDS))
            say(f"      Release matrix for step {steps}: {shown(work / 'release.yaml')}")
            say(f"      The commands run in {shown(work)}/ (so their build/ and releases/ are there)")

            def run(args: list[str]) -> None:
                run_cli(args, cwd=work, env=env)

        with t.step(f"Build the {PROFILE} image from the mirror's base (reused if nothing changed)"):
            run(["build", "--profile", PROFILE])
            record_path, record = latest_record(work / "build", PROFILE, release=STANDIN_VERSION, arch=STANDIN_ARCH)

        if not skip_boot:
            with t.step("Boot-test it under QEMU: cloud-init, growroot, an MPI hello world on 2 ranks"):
                run(["test", str(record_path.parent.relative_to(work))])

        for cloud, where in CLOUDS.items():
            with t.step(f"Publish to {cloud}: import in {where['region']}, copy to {where['copy_to']}, share"):
                args = ["publish", "--cloud", cloud, "--profile", PROFILE, "--region", where["region"],
                        "--copy-to", where["copy_to"], "--share", where["share"]]
                for option in ("bucket", "agency"):
                    args += [f"--{option}", where[option]] if option in where else []
                run(args)

        with t.step("Release: the matrix in release.yaml (boot test gate, all four clouds, the index)"):
            before = clouds.creates()
            run(["release"])
            created = clouds.creates() - before
            if created:
                say(f"      warning: the release made {created} upload/import/copy calls; it should have found "
                    "every image the publish steps made")
            else:
                say("      The release found every image the publish steps made: no upload, import or copy.")

        if crashes := clouds.crashes():
            raise StepFailed(f"an emulator crashed ({len(crashes)} times); first: {crashes[0].splitlines()[-1]}")
        summary(work, record_path, record, artifact_path, time.monotonic() - t.started)
    return 0


def summary(work: Path, record_path: Path, record: Any, artifact_path: Callable[..., Path], seconds: float) -> None:
    import json

    say()
    say("Where things are")
    for artifact in record.artifacts:
        say(f"  image ({artifact.format})".ljust(17) + shown(artifact_path(record_path, artifact)))
    say(f"  build record   {shown(record_path)}")
    journals = record_path.parent / "publish"
    for cloud in CLOUDS:
        regions = sorted(p.stem for p in (journals / cloud).glob("*.json"))
        say(f"  journals       {shown(journals / cloud)}/{{{','.join(regions)}}}.json")
    releases = work / "releases"
    say(f"  release index  {shown(releases / 'index.json')}  (the page: {shown(releases / 'README.md')})")
    index = json.loads((releases / "index.json").read_text())
    placed = index.get("images", {}).get(record.profile, {}).get(record.release, {}).get(record.arch, {})
    say()
    say(f"Images of build {record.build_id} in the release index ({record.image_name})")
    for cloud, regions in placed.items():
        for region in sorted(regions, key=lambda r: r != CLOUDS.get(cloud, {}).get("region")):
            role = "import" if region == CLOUDS.get(cloud, {}).get("region") else "copy"
            say(f"  {cloud:8} {region:13} {role:7} {regions[region]['image_id']}")
    say()
    say(f"demo: done in {duration(seconds)} (the local clouds are gone with it; the files above stay)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="demo directory (default: ./demo-work)")
    parser.add_argument("--skip-boot", action="store_true",
                        help="leave out `eulerpub test` (the release still boot-tests unless this build passed "
                             "before)")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    def on_term(signum: int, frame: object) -> None:
        raise Interrupted

    signal.signal(signal.SIGTERM, on_term)
    t = Tour(total=4 + (0 if options.skip_boot else 1) + len(CLOUDS) + 1)
    try:
        return tour(t, options.work, options.skip_boot)
    except StepFailed as error:
        say(f"demo: failed at {t.where()}: {error}")
        return 1
    except (KeyboardInterrupt, Interrupted):
        say(f"\ndemo: interrupted at {t.where()}; stopped the command and the local servers")
        return 130
    except Exception as error:  # a broken setup step: one line, not a traceback
        say(f"demo: failed at {t.where()}: {type(error).__name__}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
