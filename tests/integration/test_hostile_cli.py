"""Hostile and broken input through the real CLI, as a child process (issue 9).

Every row runs `python -m eulerpub ...` against moto (AWS, and the S3-compatible store behind OBS/COS) and the
IMS and CVM emulators, and asserts what a user and a script see and what the machine and the clouds keep:

- the exit code (2 bad input, 1 failed work);
- stderr is exactly one line, starting with `error:`, no traceback, no raw control character;
- nothing was created: no file or directory appeared in the row's workspace (cache, ./build, --output), and
  no cloud received a single request (every refusal happens before the first call).

The rows are grouped by the classes of the issue; each class has more members than the issue's examples.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.emulators import CvmEmulator, EcsEmulator, ImsEmulator
from tests.fixtures_moto import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MotoHarness

RELEASE = "24.03-LTS-SP1"
HUAWEI_REGIONS = ("cn-north-4", "cn-east-3")
TENCENT_REGIONS = ("ap-guangzhou", "ap-shanghai")
ALIBABA_REGIONS = ("cn-hangzhou", "cn-shanghai")
MiB = 1024 * 1024
ROW_TIMEOUT = 60  # seconds; a row that retries for minutes fails instead of hanging the suite


# -- the clouds: one moto server and one emulator of each kind for the whole module -----------------------------

@dataclass
class Clouds:
    moto: MotoHarness
    ims: ImsEmulator
    cvm: CvmEmulator
    ecs: EcsEmulator
    env: dict[str, str]

    def mark(self) -> tuple[int, int, int, int]:
        return len(self.moto.requests), len(self.ims.requests), len(self.cvm.requests), len(self.ecs.requests)

    def requests_since(self, mark: tuple[int, int, int, int]) -> list[str]:
        return ([f"aws:{r.service}:{r.action}" for r in self.moto.requests[mark[0]:]]
                + [f"huawei:{c.action}" for c in self.ims.requests[mark[1]:]]
                + [f"tencent:{c.action}" for c in self.cvm.requests[mark[2]:]]
                + [f"alibaba:{c.action}" for c in self.ecs.requests[mark[3]:]])


@pytest.fixture(scope="module")
def clouds(moto_server: MotoHarness) -> Iterator[Clouds]:
    with ImsEmulator(regions=HUAWEI_REGIONS) as ims, CvmEmulator(regions=TENCENT_REGIONS) as cvm, \
            EcsEmulator(regions=ALIBABA_REGIONS) as ecs:
        env = {
            "AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
            **ims.sdk_env(), "HUAWEICLOUD_SDK_AK": ims.ak, "HUAWEICLOUD_SDK_SK": ims.sk,
            "EULERPUB_HUAWEI_OBS_ENDPOINT": moto_server.url,
            "TENCENTCLOUD_SECRET_ID": cvm.secret_id, "TENCENTCLOUD_SECRET_KEY": cvm.secret_key,
            "EULERPUB_TENCENT_CVM_ENDPOINT": cvm.url, "EULERPUB_TENCENT_COS_ENDPOINT": moto_server.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ecs.access_key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ecs.access_key_secret,
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
            "EULERPUB_ALIBABA_ECS_ENDPOINT": ecs.url, "EULERPUB_ALIBABA_RAM_ENDPOINT": ecs.url,
            "EULERPUB_ALIBABA_OSS_ENDPOINT": moto_server.url,
            "EULERPUB_POLL_INTERVAL": "0.02",
        }
        for region, project in ims.projects.items():
            env[f"HUAWEICLOUD_SDK_PROJECT_ID_{region.replace('-', '_').upper()}"] = project
        yield Clouds(moto_server, ims, cvm, ecs, env)


# -- the workspace of one row ------------------------------------------------------------------------------------

@dataclass
class Space:
    root: Path  # everything the row may touch lives below here
    work: Path  # the working directory (./build is the default build directory)
    cache: Path  # EULERPUB_CACHE_DIR, made beforehand like a user's existing cache
    profiles: Path  # a --profiles-dir
    env: dict[str, str] = field(default_factory=dict)

    def profile(self, name: str, text: str | bytes) -> str:
        path = self.profiles / f"{name}.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return name

    def file(self, name: str, data: bytes = b"") -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


def mbr_disk(path: Path, size: int = 8 * MiB) -> Path:
    """A raw disk with an MBR (boot code, one active Linux partition) and some data: a plausible image."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        handle.write(b"\xeb\x63\x90".ljust(446, b"\x90"))
        handle.write(bytes([0x80, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little")
                     + (size // 512 - 2048).to_bytes(4, "little"))
        handle.seek(510)
        handle.write(b"\x55\xaa")
        handle.seek(MiB)
        handle.write(os.urandom(64 * 1024))
    return path


BASE_PROFILE = f"releases: [{RELEASE}]\narches: [x86_64]\n"
ALIAS_BOMB = ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
              "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
              "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
              "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n" + BASE_PROFILE + "packages: *g\n")


def image(space: Space) -> str:
    return str(mbr_disk(space.root / f"openEuler-{RELEASE}-x86_64.raw"))


def aws(space: Space, *args: str) -> list[str]:
    return ["publish", "--cloud", "aws", "--image", image(space), "--arch", "x86_64", "--region", "us-east-1",
            *args]


def huawei(space: Space, *args: str) -> list[str]:
    return ["publish", "--cloud", "huawei", "--image", image(space), "--arch", "x86_64", "--region",
            HUAWEI_REGIONS[0], "--bucket", "eulerpub-images", *args]


def tencent(space: Space, *args: str) -> list[str]:
    return ["publish", "--cloud", "tencent", "--image", image(space), "--arch", "x86_64", "--region",
            TENCENT_REGIONS[0], "--bucket", "eulerpub-1250000000", *args]


def alibaba(space: Space, *args: str) -> list[str]:
    return ["publish", "--cloud", "alibaba", "--image", image(space), "--arch", "x86_64", "--region",
            ALIBABA_REGIONS[0], "--bucket", "eulerpub-images", *args]


def build(space: Space, profile_text: str | bytes, *args: str) -> list[str]:
    return ["build", "--profile", space.profile("p", profile_text), "--profiles-dir", str(space.profiles),
            "--dry-run", *args]


@dataclass(frozen=True)
class Row:
    id: str
    argv: Callable[[Space], list[str]]
    exit: int
    says: str  # a fragment of the error line
    setup: Callable[[Space], None] | None = None
    stdout: str | None = None  # a shell redirection of stdout: "closed" or "full"
    needs: str | None = None  # a module the refusal lives in, if it may not be there yet


def _cache_under_a_file(space: Space) -> None:
    space.env["EULERPUB_CACHE_DIR"] = str(space.file("plain-file") / "cache")


def _cache_others_can_write(space: Space) -> None:
    shared = space.root / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    space.env["EULERPUB_CACHE_DIR"] = str(shared)


def _cache_is_a_symlink(space: Space) -> None:
    target = space.root / "elsewhere"
    target.mkdir(mode=0o700)
    (space.root / "linked-cache").symlink_to(target)
    space.env["EULERPUB_CACHE_DIR"] = str(space.root / "linked-cache")


def _env(**values: str) -> Callable[[Space], None]:
    return lambda space: space.env.update(values)


def _backing_file_image(space: Space) -> None:
    path = space.root / f"openEuler-{RELEASE}-x86_64.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(path), "1M"],
                   check=True)


FETCH = ["fetch", "--release", RELEASE, "--arch", "x86_64"]

ROWS = [
    # 5. never a traceback: malformed mirrors
    Row("mirror-ipv6-unclosed", lambda s: [*FETCH, "--mirror", "http://[::1"], 2, "is not an http(s) URL"),
    Row("mirror-port-out-of-range", lambda s: [*FETCH, "--mirror", "http://a:99999/"], 2, "Port out of range"),
    Row("mirror-with-space", lambda s: [*FETCH, "--mirror", "http://a b/"], 2, "holds a space or control"),
    Row("mirror-not-http", lambda s: [*FETCH, "--mirror", "ftp://mirror.example/"], 2, "is not an http(s) URL"),
    Row("mirror-no-host", lambda s: [*FETCH, "--mirror", "http:///openeuler/"], 2, "is not an http(s) URL"),
    Row("mirror-env-malformed-in-build", lambda s: build(s, BASE_PROFILE), 2, "is not an http(s) URL",
        setup=_env(EULERPUB_MIRROR="http://[fe80::1%eth0")),
    # 5. settings files that are not text, nested too deep, or format strings in disguise
    Row("profile-not-utf8", lambda s: build(s, b"releases: [\xff\xfe]\narches: [x86_64]\n"), 2, "not UTF-8 text"),
    Row("profile-binary", lambda s: build(s, b"\x00\x01\x02ELF\x7f\x00"), 2, "not a text file"),
    Row("profile-deeply-nested", lambda s: build(s, "x: " + "[" * 5000 + "]" * 5000 + "\n"), 2,
        "nested more than 32 levels deep"),
    Row("profile-deep-mappings", lambda s: build(s, "".join(f"{' ' * i}k{i}:\n" for i in range(200))), 2,
        "nested more than 32 levels deep"),
    Row("template-nested-format-spec", lambda s: build(
        s, BASE_PROFILE + "name_template: 'openEuler-{release}-{arch:{build_id.__class__}}'\n"), 2,
        "placeholders take no format spec"),
    Row("template-conversion", lambda s: build(s, BASE_PROFILE + "name_template: 'openEuler-{release}-{arch!r}'\n"),
        2, "placeholders take no format spec"),
    Row("template-attribute", lambda s: build(
        s, BASE_PROFILE + "name_template: 'openEuler-{release}-{arch.__class__.__mro__}'\n"), 2,
        "unknown placeholder"),
    Row("template-unbalanced", lambda s: build(s, BASE_PROFILE + "name_template: 'openEuler-{release}-{'\n"), 2,
        "name_template"),
    Row("profile-not-a-mapping", lambda s: build(s, "just a string\n"), 2, "expected a mapping"),
    # 5. regions in images list and prune, prune's age
    Row("images-list-region-path", lambda s: ["images", "list", "--cloud", "aws", "--region", "../etc"], 2,
        "is not a region name on AWS"),
    Row("images-list-region-huawei", lambda s: ["images", "list", "--cloud", "huawei", "--region", "ap-guangzhou"],
        2, "is not a region name on Huawei Cloud"),
    Row("images-list-region-tencent", lambda s: ["images", "list", "--cloud", "tencent", "--region", "us-east-1"],
        2, "is not a region name on Tencent Cloud"),
    Row("images-list-unknown-cloud", lambda s: ["images", "list", "--cloud", "gcp", "--region", "us-east-1"], 2,
        "'gcp' is not one of 'aws', 'huawei', 'tencent'"),
    Row("prune-region-url", lambda s: ["prune", "--cloud", "aws", "--region", "https://evil", "--keep", "1"], 2,
        "is not a region name on AWS"),
    Row("prune-age-inf", lambda s: ["prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1",
                                    "--orphan-min-age", "inf"], 2, "--orphan-min-age must be between 0 and"),
    Row("prune-age-1e300", lambda s: ["prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1",
                                      "--orphan-min-age", "1e300"], 2, "--orphan-min-age must be between 0 and"),
    Row("prune-age-nan", lambda s: ["prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1",
                                    "--orphan-min-age", "nan"], 2, "--orphan-min-age"),
    Row("prune-age-negative", lambda s: ["prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "1",
                                         "--orphan-min-age", "-1"], 2, "--orphan-min-age"),
    Row("prune-keep-zero", lambda s: ["prune", "--cloud", "aws", "--region", "us-east-1", "--keep", "0"], 2,
        "--keep"),
    # 5. the cache directory
    Row("cache-under-a-file", lambda s: FETCH, 2, "cannot be made (Not a directory)", setup=_cache_under_a_file),
    Row("cache-under-proc", lambda s: FETCH, 2, "cannot be made", setup=_env(EULERPUB_CACHE_DIR="/proc/eulerpub")),
    Row("cache-others-can-write", lambda s: FETCH, 2, "is writable by other users", setup=_cache_others_can_write),
    Row("cache-is-a-symlink", lambda s: FETCH, 2, "is a symbolic link or not a directory",
        setup=_cache_is_a_symlink),
    # 5. stdout: closed, full, an encoding that cannot hold the result
    Row("stdout-closed", lambda s: ["catalog", "list"], 1, "standard output is closed", stdout="closed"),
    Row("stdout-full", lambda s: ["catalog", "list"], 1, "No space left on device", stdout="full"),
    Row("stdout-full-json", lambda s: ["catalog", "list", "--json"], 1, "No space left on device", stdout="full"),
    Row("stdout-ascii-non-ascii-name", lambda s: ["profiles", "list", "--profiles-dir", str(s.profiles)], 1,
        "cannot write the result in ascii",
        setup=lambda s: (s.profile("prüfung", BASE_PROFILE + "description: Prüfung\n"),
                         s.env.update(PYTHONIOENCODING="ascii"))),
    # 5/6. click-level and unknown input
    Row("unknown-command", lambda s: ["deploy"], 2, "No such command"),
    Row("unknown-option", lambda s: ["fetch", "--releese", RELEASE], 2, "No such option"),
    Row("wait-timeout-inf", lambda s: aws(s, "--wait-timeout", "inf"), 2, "finite and positive"),
    Row("wait-timeout-nan", lambda s: aws(s, "--wait-timeout", "nan"), 2, "finite and positive"),
    Row("wait-timeout-zero", lambda s: aws(s, "--wait-timeout", "0"), 2, "positive"),
    Row("wait-timeout-negative", lambda s: aws(s, "--wait-timeout", "-5"), 2, "positive"),
    # 6. image names per cloud (also in --dry-run), never a raw control character
    Row("aws-name-escape-sequence", lambda s: aws(s, "--name", "openEuler-\x1b[31mred\x1b[0m"), 2,
        "which AWS does not allow in image names"),
    Row("aws-name-newline-dry-run", lambda s: aws(s, "--name", "openEuler-x\nerror: forged", "--dry-run"), 2,
        "which AWS does not allow"),
    Row("aws-name-too-long", lambda s: aws(s, "--name", "o" * 129), 2, "129 characters; AWS allows 3-128"),
    Row("aws-name-too-short", lambda s: aws(s, "--name", "oE"), 2, "AWS allows 3-128"),
    Row("aws-name-hash", lambda s: aws(s, "--name", "openEuler#1"), 2, "'#', which AWS does not allow"),
    Row("huawei-name-plus", lambda s: huawei(s, "--name", "openEuler+hpc"), 2, "'+', which Huawei Cloud"),
    Row("huawei-name-too-long", lambda s: huawei(s, "--name", "o" * 129), 2, "Huawei Cloud allows 1-128"),
    Row("tencent-name-too-long", lambda s: tencent(s, "--name", "o" * 61, "--dry-run"), 2,
        "61 characters; Tencent Cloud allows 1-60"),
    Row("tencent-name-control", lambda s: tencent(s, "--name", "openEuler\x07bell"), 2, "Tencent Cloud does not"),
    Row("alibaba-name-aliyun", lambda s: alibaba(s, "--name", "aliyun-openEuler"), 2,
        "must start with a letter and not with 'aliyun' or 'acs:'"),
    Row("alibaba-name-digit-first-dry-run", lambda s: alibaba(s, "--name", "24.03-openEuler", "--dry-run"), 2,
        "must start with a letter"),
    Row("alibaba-name-space", lambda s: alibaba(s, "--name", "openEuler hpc"), 2,
        "' ', which Alibaba Cloud does not allow"),
    Row("alibaba-name-too-long", lambda s: alibaba(s, "--name", "o" * 129), 2, "Alibaba Cloud allows 2-128"),
    Row("alibaba-name-escape", lambda s: alibaba(s, "--name", "openEuler-\x1b[31mred"), 2,
        "which Alibaba Cloud does not allow"),
    # 6. release, arch, share targets, regions, directories
    Row("publish-release-unknown", lambda s: aws(s, "--release", "99.99-LTS"), 2,
        "unknown openEuler release '99.99-LTS'"),
    Row("build-release-unknown", lambda s: build(s, BASE_PROFILE, "--release", "99.99-LTS"), 2,
        "does not build release '99.99-LTS'"),
    Row("profile-release-unknown", lambda s: build(s, "releases: [26.99-LTS]\narches: [x86_64]\n"), 2,
        "releases[0]: unknown openEuler release '26.99-LTS'"),
    Row("publish-arch-riscv64", lambda s: [*huawei(s)[:5], "--arch", "riscv64", *huawei(s)[7:]], 2,
        "Invalid value for '--arch' / '-a': 'riscv64' is not one of 'x86_64', 'aarch64'"),
    Row("arch-unknown", lambda s: [*aws(s)[:5], "--arch", "sparc", *aws(s)[7:]], 2, "'sparc' is not one of"),
    Row("test-arch-riscv64", lambda s: ["test", image(s), "--arch", "riscv64"], 2, "'riscv64' is not one of"),
    Row("publish-format-unknown", lambda s: aws(s, "--format", "vhdx"), 2,
        "'vhdx' is not one of 'qcow2', 'raw', 'vmdk', 'vhd'"),
    Row("publish-boot-mode-typo", lambda s: aws(s, "--boot-mode", "legacy"), 2, "'legacy' is not one of 'uefi'"),
    Row("aws-share-short", lambda s: aws(s, "--share", "1234"), 2, "expected a 12-digit AWS account id"),
    Row("aws-share-arn", lambda s: aws(s, "--share", "arn:aws:iam::123456789012:root"), 2, "12-digit AWS account"),
    Row("huawei-share-not-hex", lambda s: huawei(s, "--share", "not-a-project"), 2, "32-hex-digit project id"),
    Row("tencent-share-letters", lambda s: tencent(s, "--share", "abc"), 2, "numeric Tencent Cloud account id"),
    Row("alibaba-share-letters", lambda s: alibaba(s, "--share", "abc"), 2, "numeric Alibaba Cloud account id"),
    Row("alibaba-share-too-short", lambda s: alibaba(s, "--share", "12345"), 2, "numeric Alibaba Cloud account id"),
    Row("alibaba-public", lambda s: alibaba(s, "--public"), 2, "does not publish Alibaba Cloud community images"),
    Row("alibaba-no-bucket", lambda s: alibaba(s)[:-2], 2,
        "publishing to alibaba through object storage needs a bucket"),
    Row("alibaba-quick-import", lambda s: alibaba(s, "--quick-import"), 2, "--quick-import is Huawei Cloud only"),
    Row("alibaba-format-vmdk", lambda s: alibaba(s, "--format", "vmdk"), 2,
        "--format vmdk: alibaba imports qcow2, raw, vhd"),
    Row("alibaba-boot-mode-unknown", lambda s: alibaba(s, "--boot-mode", "legacy"), 2,
        "'legacy' is not one of 'uefi'"),
    Row("alibaba-region-path", lambda s: [*alibaba(s)[:7], "--region", "../etc", *alibaba(s)[9:]], 2,
        "is not a region name on Alibaba Cloud"),
    Row("alibaba-region-underscore", lambda s: [*alibaba(s)[:7], "--region", "cn_hangzhou", *alibaba(s)[9:]], 2,
        "is not a region name on Alibaba Cloud"),
    Row("alibaba-copy-to-url", lambda s: alibaba(s, "--copy-to", "https://cn-shanghai"), 2,
        "is not a region name on Alibaba Cloud"),
    Row("images-list-region-alibaba", lambda s: ["images", "list", "--cloud", "alibaba", "--region", "cn-hangzhou/x"],
        2, "is not a region name on Alibaba Cloud"),
    Row("prune-region-alibaba", lambda s: ["prune", "--cloud", "alibaba", "--region", "CN-HANGZHOU", "--keep", "1"],
        2, "is not a region name on Alibaba Cloud"),
    Row("aws-region-url", lambda s: [*aws(s)[:7], "--region", "https://evil.example/", *aws(s)[9:]], 2,
        "is not a region name on AWS"),
    Row("aws-copy-to-path", lambda s: aws(s, "--copy-to", "eu-west-1/../x"), 2, "is not a region name on AWS"),
    Row("huawei-region-of-tencent", lambda s: [*huawei(s)[:7], "--region", "ap-guangzhou", *huawei(s)[9:]], 2,
        "is not a region name on Huawei Cloud"),
    Row("profile-region-bad", lambda s: build(s, BASE_PROFILE + "clouds: {aws: {regions: ['us-east-1 --x']}}\n"),
        2, "clouds.aws.regions[0]: 'us-east-1 --x' is not a region name on AWS"),
    Row("profile-share-bad", lambda s: build(
        s, BASE_PROFILE + "clouds: {tencent: {regions: [ap-guangzhou], share: ['12ab']}}\n"), 2,
        "clouds.tencent.share[0]"),
    Row("release-yaml-region-bad", lambda s: ["release", "--config", str(s.file("release.yaml", (
        f"profiles: [minimal]\nreleases: [{RELEASE}]\narches: [x86_64]\n"
        "clouds: {huawei: {regions: [ap-guangzhou]}}\n").encode())), "--dry-run"], 2,
        "clouds.huawei.regions[0]: 'ap-guangzhou' is not a region name on Huawei Cloud"),
    Row("release-yaml-share-bad", lambda s: ["release", "--config", str(s.file("release.yaml", (
        f"profiles: [minimal]\nreleases: [{RELEASE}]\narches: [x86_64]\n"
        "clouds: {aws: {regions: [us-east-1], share: ['42']}}\n").encode())), "--dry-run"], 2,
        "clouds.aws.share[0]"),
    Row("release-yaml-release-unknown", lambda s: ["release", "--config", str(s.file("release.yaml", (
        b"profiles: [minimal]\nreleases: [23.99-LTS]\narches: [x86_64]\n"
        b"clouds: {aws: {regions: [us-east-1]}}\n"))), "--dry-run"], 2,
        "unknown openEuler release '23.99-LTS'"),
    Row("build-dir-is-a-file", lambda s: build(s, BASE_PROFILE, "--build-dir", str(s.file("not-a-dir"))), 2,
        "is a file, not a directory"),
    Row("old-output-is-a-file", lambda s: build(s, BASE_PROFILE, "--output", str(s.file("not-a-dir"))), 2,
        "is a file, not a directory"),
    Row("publish-build-dir-is-a-file", lambda s: aws(s, "--build-dir", str(s.file("not-a-dir"))), 2,
        "is a file, not a directory"),
    Row("profiles-dir-missing", lambda s: ["build", "--profile", "minimal", "--profiles-dir",
                                           str(s.root / "no-such-dir"), "--dry-run"], 2, "no such directory"),
    Row("element-absolute-path", lambda s: build(s, BASE_PROFILE + "elements: [/etc]\n"), 2,
        "'/etc' is not an element name"),
    Row("element-traversal", lambda s: build(s, BASE_PROFILE + "elements: ['../../../tmp/evil']\n"), 2,
        "is not an element name"),
    Row("base-element-path", lambda s: build(s, BASE_PROFILE + "base_element: /opt/elements/os\n"), 2,
        "base_element"),
    # 4. what a profile may hand to the build
    Row("env-ld-preload", lambda s: build(s, BASE_PROFILE + "env: {LD_PRELOAD: /tmp/x.so}\n"), 2,
        "'LD_PRELOAD': a profile sets only variables for elements"),
    Row("env-path", lambda s: build(s, BASE_PROFILE + "env: {PATH: /tmp/bin}\n"), 2, "'PATH': a profile sets only"),
    Row("env-elements-path", lambda s: build(s, BASE_PROFILE + "env: {ELEMENTS_PATH: /tmp/el}\n"), 2,
        "'ELEMENTS_PATH'"),
    Row("env-bash-env", lambda s: build(s, BASE_PROFILE + "env: {BASH_ENV: /tmp/rc}\n"), 2, "'BASH_ENV'"),
    Row("env-dib-local-image", lambda s: build(s, BASE_PROFILE + "env: {DIB_LOCAL_IMAGE: /etc/shadow}\n"), 2,
        "DIB_LOCAL_IMAGE is set by eulerpub itself"),
    Row("package-injection", lambda s: build(s, BASE_PROFILE + "packages: ['bash; id,--nogpgcheck']\n"), 2,
        "'bash; id,--nogpgcheck' is not a package name"),
    Row("package-option", lambda s: build(s, BASE_PROFILE + "packages: ['--nogpgcheck']\n"), 2,
        "is not a package name"),
    Row("package-comma", lambda s: build(s, BASE_PROFILE + "packages: ['vim,nano']\n"), 2, "is not a package name"),
    # 7. YAML that cannot hurt
    Row("yaml-alias-bomb", lambda s: build(s, ALIAS_BOMB), 2, "values once its aliases are expanded"),
    Row("yaml-long-value-quoted-short", lambda s: build(s, BASE_PROFILE + f"elements: ['{'e' * 100_000}/']\n"), 2,
        "(100001 characters)"),
    Row("yaml-huge-file", lambda s: build(s, BASE_PROFILE + "# " + "x" * (2 * MiB) + "\n"), 2,
        "larger than 1024 KiB"),
    # 9. offline is one sentence, not a storm of retries
    Row("fetch-unresolvable-mirror", lambda s: [*FETCH, "--mirror", "http://does-not-exist.invalid/"], 1,
        "cannot resolve does-not-exist.invalid (offline, or no DNS); pass --mirror or set EULERPUB_MIRROR"),
    Row("build-unresolvable-mirror", lambda s: ["build", "--profile", "minimal"], 1,
        "cannot resolve does-not-exist.invalid", setup=_env(EULERPUB_MIRROR="http://does-not-exist.invalid/")),
    # 1/2. image files that are no image (refused by eulerpub/imagefile.py before any byte is sent)
    Row("image-empty", lambda s: [*aws(s)[:4], str(s.file(f"openEuler-{RELEASE}-empty.raw")), *aws(s)[5:]], 2,
        "is empty (0 bytes)", needs="eulerpub.imagefile"),
    Row("image-text", lambda s: [*aws(s)[:4], str(s.file(f"openEuler-{RELEASE}-t.raw", b"hello, I am a disk\n")),
                                 *aws(s)[5:]], 2, "is a text file", needs="eulerpub.imagefile"),
    Row("image-backing-file", lambda s: [*aws(s)[:4], str(s.root / f"openEuler-{RELEASE}-x86_64.qcow2"),
                                         *aws(s)[5:]], 2, "has a backing file", setup=_backing_file_image,
        needs="eulerpub.imagefile"),
    Row("image-no-partition-table", lambda s: [*aws(s)[:4], str(s.file(f"openEuler-{RELEASE}-np.raw",
                                                                        os.urandom(4 * MiB))), *aws(s)[5:]], 2,
        "has no partition table", needs="eulerpub.imagefile"),
]


def _paths(root: Path) -> set[str]:
    found = set()
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def run_cli(argv: list[str], env: dict[str, str], cwd: Path, stdout: str | None = None,
            timeout: float = ROW_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "eulerpub", *argv]
    if stdout is None:
        return subprocess.run(command, env=env, cwd=cwd, capture_output=True, timeout=timeout)
    # the redirection is the shell's, like a user's `>&-` or `> /dev/full`
    redirect = {"closed": ">&-", "full": "> /dev/full"}[stdout]
    shell = " ".join(f"'{a}'" for a in command) + f" {redirect}"
    return subprocess.run(["bash", "-c", shell], env=env, cwd=cwd, stderr=subprocess.PIPE, timeout=timeout)


def _param(row: Row):
    missing = row.needs is not None and importlib.util.find_spec(row.needs) is None
    return pytest.param(row, id=row.id, marks=pytest.mark.skipif(missing, reason=f"{row.needs} is not there yet"))


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_hostile_input_is_one_sentence_and_changes_nothing(row: Row, clouds: Clouds, tmp_path: Path):
    space = Space(root=tmp_path, work=tmp_path / "work", cache=tmp_path / "cache", profiles=tmp_path / "profiles")
    for directory in (space.work, space.cache, space.profiles):
        directory.mkdir(mode=0o700)
    space.env = {**os.environ, **clouds.env, "EULERPUB_CACHE_DIR": str(space.cache)}
    space.env.pop("EULERPUB_MIRROR", None)
    if row.setup:
        row.setup(space)
    argv = row.argv(space)
    before, mark = _paths(tmp_path), clouds.mark()
    started = time.monotonic()
    result = run_cli(argv, space.env, space.work, row.stdout)
    seconds = time.monotonic() - started
    stderr = result.stderr.decode(errors="replace")

    assert result.returncode == row.exit, stderr
    lines = stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line:\n{stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not any(ch in lines[0] for ch in "\x1b\x07\r"), "a control character reached the terminal raw"
    assert row.says in lines[0]
    assert len(lines[0]) < 700, "an error quotes at most a short prefix of any value"
    assert seconds < 20, f"took {seconds:.1f} s"
    assert _paths(tmp_path) - before == set(), "the row created files"
    assert clouds.requests_since(mark) == [], "a cloud was called"


def test_with_json_a_failure_is_also_a_json_object_on_stdout(clouds: Clouds, tmp_path: Path):
    env = {**os.environ, **clouds.env, "EULERPUB_CACHE_DIR": str(tmp_path)}
    result = run_cli(["images", "list", "--cloud", "aws", "--region", "mars-1", "--json"], env, tmp_path)
    assert result.returncode == 2
    assert json.loads(result.stdout) == {"ok": False, "exit": 2, "error": result.stderr.decode().strip()[7:]}


@pytest.mark.needs_root("mounting a read-only tmpfs needs root")
def test_a_read_only_cache_directory_is_one_sentence(clouds: Clouds, tmp_path: Path):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs", str(readonly)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        env = {**os.environ, **clouds.env}
        for cache, says in ((readonly, "is not writable (read-only file system?)"),
                            (readonly / "sub", "cannot be made (Read-only file system)")):
            result = run_cli([*FETCH], {**env, "EULERPUB_CACHE_DIR": str(cache)}, tmp_path)
            stderr = result.stderr.decode()
            assert result.returncode == 2 and stderr.count("\n") == 1 and says in stderr, stderr
    finally:
        subprocess.run(["umount", str(readonly)], check=True)


def test_ctrl_c_during_a_publish_says_interrupted_exits_130_and_a_rerun_resumes(clouds: Clouds, tmp_path: Path):
    """A real SIGINT while the upload waits on a stuck cloud: one sentence, exit 130, the journal stays readable
    and the same command afterwards finishes with one image."""
    moto = clouds.moto
    disk = mbr_disk(tmp_path / f"openEuler-{RELEASE}-x86_64.raw", 16 * MiB)
    argv = ["publish", "--cloud", "aws", "--image", str(disk), "--arch", "x86_64", "--region", "us-east-1",
            "--name", f"openEuler-{RELEASE}-x86_64-sigint-{os.getpid()}"]
    env = {**os.environ, **clouds.env, "EULERPUB_CACHE_DIR": str(tmp_path / "cache")}
    stuck = moto.add_fault("delay", action="PutSnapshotBlock", delay=8.0)
    try:
        child = subprocess.Popen([sys.executable, "-m", "eulerpub", *argv], env=env, cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not [r for r in moto.calls("PutSnapshotBlock") if r.status == 0] and time.monotonic() < deadline:
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        moto.faults.remove(stuck)
    stderr = err.decode()
    assert child.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted; re-run the same command to resume", stderr
    assert "Traceback" not in stderr
    journals = list((tmp_path / "build").rglob("aws/us-east-1.json"))
    assert len(journals) == 1, "the journal of the interrupted run is there"
    journal = json.loads(journals[0].read_text())  # consistent: whole JSON, the upload step not marked done
    assert journal["steps"].get("upload", {}).get("status") != "done"

    again = run_cli(argv, env, tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    assert len([r for r in moto.registered if r[1]["Name"] == argv[-1]]) == 1
