"""build: inputs and build_id, reuse, and a whole run against a fake disk-image-create."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from eulerpub import build, hostenv
from eulerpub.errors import EulerpubError, UsageError
from eulerpub.manifest import read_record, sha256_file
from eulerpub.profiles import Profile

FAKE_DIB = r"""#!/bin/bash
# A stand-in for disk-image-create: writes <stem>.raw and the package list the elements would write.
set -eu
stem=""
while [ $# -gt 0 ]; do case "$1" in -o) stem=$2; shift 2 ;; *) shift ;; esac; done
echo "Running hooks from /tmp/x/hooks/root.d"
[ -n "${DIB_FAKE_FAIL:-}" ] && { echo "${DIB_FAKE_FAIL_LINE:-element script failed}"; exit 1; }
[ -n "${DIB_FAKE_KILL:-}" ] && kill -KILL $$  # as the OOM killer ends a build
test -f "$DIB_LOCAL_IMAGE"
mkdir -p "$stem.d/dib-manifests"
printf 'bash\t5.2-1\tamd64\ncloud-init\t22.4\tall\n' >"$stem.d/dib-manifests/eulerpub-packages.tsv"
# what the openeuler element's package resolution leaves when optional packages are missing
if [ -n "${DIB_FAKE_MISSING:-}" ]; then
    for name in $DIB_EULER_OPTIONAL_PACKAGES; do
        case " $DIB_FAKE_MISSING " in *" $name "*) echo "$name" ;; esac
    done >"$stem.d/dib-manifests/eulerpub-skipped-packages"
fi
truncate -s 64M "$stem.raw"
printf 'not really a filesystem' | dd of="$stem.raw" conv=notrunc status=none
echo "$*" >>"$DIB_FAKE_CALLS"
env >"$DIB_FAKE_CALLS.env"
"""


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    url: str


def profile(**overrides) -> Profile:
    data = dict(name="t", releases=["24.03-LTS-SP1"], arches=["x86_64"], elements=["vm", "openeuler-cloud"],
                formats=["qcow2", "raw"], image_size_gb=2, checks=["mpi"])
    data.update(overrides)
    return Profile.model_validate(data)


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    exe = tmp_path / "fake-dib"
    exe.write_text(FAKE_DIB)
    exe.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    monkeypatch.setenv("DIB_FAKE_CALLS", str(calls))
    monkeypatch.setattr(build, "_disk_image_create", lambda: str(exe))
    monkeypatch.setattr(build, "MIN_FREE_BYTES", 0)
    monkeypatch.setattr(hostenv, "teardown_stale", lambda *a, **k: [])
    monkeypatch.setattr(hostenv, "global_lock_path", lambda: tmp_path / "build.lock")
    base = tmp_path / "base.qcow2"
    base.write_bytes(b"qcow2")
    fetcher = lambda release, arch, mirror=None: Fetched(base, "ab" * 32, f"{mirror}/x.qcow2.xz")  # noqa: E731
    return calls, fetcher


def test_elements_always_include_vm_once():
    assert build.resolve_elements(profile(elements=["vm", "hpc-toolchain"])) == [
        "openeuler", "vm", "block-device-efi", "hpc-toolchain"]


def test_the_boot_setting_picks_the_block_device_element():
    assert "block-device-mbr" in build.resolve_elements(profile(boot="bios"))
    assert "block-device-efi" in build.resolve_elements(profile(arches=["aarch64"]), "aarch64")
    with pytest.raises(UsageError, match="boot: bios cannot be built for aarch64"):
        build.resolve_elements(profile(boot="bios", arches=["aarch64"]), "aarch64")


def test_build_id_follows_image_inputs_not_publish_settings():
    def bid(p: Profile, base: str = "aa") -> str:
        return build.compute_build_id(build.build_inputs(p, "24.03-LTS-SP1", "x86_64", base, ["e"], "h"))

    plain = bid(profile())
    assert plain == bid(profile(description="other words", clouds={"aws": {"regions": ["us-west-2"]}}))
    assert plain != bid(profile(env={"DIB_EULER_CMDLINE_DROP": "softlockup_panic=1"}))
    assert plain != bid(profile(), base="bb")
    assert plain != bid(profile(packages=["vim"]))
    assert plain != bid(profile(optional_packages=["xrdp"]))
    assert plain != bid(profile(image_mirror="https://mirrors.example.edu/openeuler"))


def test_optional_packages_reach_the_elements_and_the_record_lists_the_skipped(tmp_path, fake_env, monkeypatch):
    calls, fetcher = fake_env
    monkeypatch.setenv("DIB_FAKE_MISSING", "xrdp firefox")
    p = profile(packages=["htop"], optional_packages=["xrdp", "sshpass"],
                image_mirror="https://mirrors.example.edu/openeuler/")
    plan = build.plan_build(p, output=tmp_path / "b", mirror="http://m", fetcher=fetcher)
    record = read_record(build.run_build(plan).record_path)
    assert record.skipped_packages == ["xrdp"]
    seen = dict(line.split("=", 1) for line in Path(f"{calls}.env").read_text().splitlines() if "=" in line)
    assert seen["DIB_EULER_OPTIONAL_PACKAGES"] == "xrdp sshpass"
    assert seen["DIB_EULER_PROFILE_PACKAGES"] == "htop"
    assert seen["DIB_EULER_IMAGE_MIRROR"] == "https://mirrors.example.edu/openeuler"
    assert seen["DIB_EULER_MIRROR"] == "http://m"  # the build's mirror is a different setting


@pytest.mark.parametrize("bad", [{"image_mirror": "ftp://x"}, {"image_mirror": "http://a b"},
                                 {"optional_packages": ["-rf"]}, {"env": {"DIB_EULER_IMAGE_MIRROR": "http://x"}}])
def test_profile_refuses_bad_optional_packages_and_mirrors(bad):
    with pytest.raises(ValueError):
        profile(**bad)


def test_read_package_list(tmp_path):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("zsh\t5.9\tx86_64\nbash\t1:5.2-1.oe2403\tx86_64\n")
    assert build.read_package_list(tsv) == ["bash-1:5.2-1.oe2403.x86_64", "zsh-5.9.x86_64"]
    with pytest.raises(EulerpubError):
        build.read_package_list(tmp_path / "missing.tsv")


def test_dry_run_plan_names_the_command(tmp_path):
    plan = build.plan_build(profile(), output=tmp_path, mirror="http://m.example/", fetch=False)
    described = plan.describe()
    assert described["dib"]["argv"][-4:] == ["openeuler", "vm", "block-device-efi", "openeuler-cloud"]
    assert described["boot"] == "hybrid"
    assert described["dib"]["env"]["DIB_EULER_MIRROR"] == "http://m.example"
    assert "TMP_DIR" in described["dib"]["env"] and "TMPDIR" not in described["dib"]["env"]


def test_build_then_reuse_then_force(tmp_path, fake_env):
    calls, fetcher = fake_env
    out = tmp_path / "builds"
    plan = build.plan_build(profile(), output=out, mirror="http://m", fetcher=fetcher)
    first = build.run_build(plan)
    assert not first.reused and first.record_path == out / plan.build_id / "manifest.json"
    record = read_record(first.record_path)
    assert [a.format for a in record.artifacts] == ["qcow2", "raw"]
    for artifact in record.artifacts:
        path = first.record_path.parent / artifact.path
        assert sha256_file(path) == artifact.sha256 and artifact.virtual_size == 64 * 1024**2
    assert record.packages == ["bash-5.2-1.amd64", "cloud-init-22.4.all"]
    assert record.checks == ["mpi"] and record.inputs["base_sha256"] == "ab" * 32
    assert not (out / f"{plan.build_id}.partial").exists()
    assert not (first.record_path.parent / "dib").exists()

    again = build.run_build(build.plan_build(profile(), output=out, mirror="http://m", fetcher=fetcher))
    assert again.reused and len(calls.read_text().splitlines()) == 1

    (first.record_path.parent / record.artifacts[0].path).unlink()  # a lost artifact means rebuild
    rebuilt = build.run_build(plan)
    assert not rebuilt.reused and len(calls.read_text().splitlines()) == 2
    forced = build.run_build(plan, force=True)
    assert not forced.reused and len(calls.read_text().splitlines()) == 3


def test_failed_build_leaves_no_record_and_names_the_log(tmp_path, fake_env, monkeypatch):
    _calls, fetcher = fake_env
    monkeypatch.setenv("DIB_FAKE_FAIL", "1")
    out = tmp_path / "builds"
    plan = build.plan_build(profile(), output=out, fetcher=fetcher)
    with pytest.raises(EulerpubError) as caught:
        build.run_build(plan)
    log = out / f"{plan.build_id}.partial" / "build.log"
    assert str(log) in str(caught.value) and "element script failed" in log.read_text()
    assert not (out / plan.build_id).exists()
    assert not list(out.rglob("manifest.json"))
    described = json.loads(json.dumps(plan.describe()))  # what --dry-run --json prints, read back
    assert described["build_id"] == plan.build_id and described["directory"] == str(out / plan.build_id)
    assert described["dib"]["argv"] == plan.command.argv and described["base"]["sha256"] == plan.base.sha256


@pytest.mark.parametrize(("variable", "ended"), [("DIB_FAKE_FAIL", "(exit code 1)"),
                                                  ("DIB_FAKE_KILL", "(killed by SIGKILL)")])
def test_a_failed_or_killed_dib_is_named_by_how_it_ended(tmp_path, fake_env, monkeypatch, variable, ended):
    _calls, fetcher = fake_env
    monkeypatch.setenv(variable, "1")
    plan = build.plan_build(profile(), output=tmp_path / "builds", fetcher=fetcher)
    with pytest.raises(EulerpubError) as caught:
        build.run_build(plan)
    assert str(caught.value).startswith(f"disk-image-create failed {ended}; see its log: "), str(caught.value)


def test_cloud_credentials_and_host_steering_variables_never_reach_disk_image_create(tmp_path, fake_env,
                                                                                     monkeypatch):
    """Issue 9: DIB and every element script (root, writing into the image) get an allowlisted environment."""
    calls, fetcher = fake_env
    sourced = tmp_path / "bash-env-ran"
    (tmp_path / "evil.sh").write_text(f"touch {sourced}\n")
    leaky = {"AWS_SECRET_ACCESS_KEY": "aws-secret-DoNotLeak", "AWS_SESSION_TOKEN": "aws-token-DoNotLeak",
             "HUAWEICLOUD_SDK_SK": "hw-secret-DoNotLeak", "TENCENTCLOUD_SECRET_KEY": "tc-secret-DoNotLeak",
             "GITHUB_TOKEN": "gh-DoNotLeak", "BASH_ENV": str(tmp_path / "evil.sh"), "PYTHONPATH": "/evil",
             "LD_LIBRARY_PATH": "/evil"}
    for name, value in leaky.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DIB_DISTRIBUTION_MIRROR", "http://mirror.example/debian")  # an operator's DIB setting
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    build.run_build(build.plan_build(profile(), output=tmp_path / "builds", mirror="http://m", fetcher=fetcher))
    seen = dict(line.split("=", 1) for line in Path(f"{calls}.env").read_text().splitlines() if "=" in line)
    assert not set(leaky) & set(seen), sorted(set(leaky) & set(seen))
    assert not any("DoNotLeak" in value for value in seen.values())
    assert not sourced.exists(), "BASH_ENV was honoured by disk-image-create's bash"
    assert seen["DIB_DISTRIBUTION_MIRROR"] == "http://mirror.example/debian" and seen["LC_ALL"] == "C.UTF-8"
    assert seen["DIB_LOCAL_IMAGE"].endswith("base.qcow2") and "PATH" in seen and "HOME" in seen


def test_missing_packages_are_the_failure_sentence(tmp_path, fake_env, monkeypatch):
    """The openeuler element's resolution sentence (as DIB logs it, with its timestamp prefix) is the error."""
    _calls, fetcher = fake_env
    monkeypatch.setenv("DIB_FAKE_FAIL", "1")
    monkeypatch.setenv("DIB_FAKE_FAIL_LINE", "2026-12-01 20:00:01.123 | openeuler: 2 requested package(s) are in "
                       "none of the enabled repositories (OS, everything, EPOL, update): at, xrdp")
    plan = build.plan_build(profile(), output=tmp_path / "b", mirror="http://m", fetcher=fetcher)
    with pytest.raises(EulerpubError) as err:
        build.run_build(plan)
    assert str(err.value).startswith("2 requested package(s) are in none of the enabled repositories "
                                     "(OS, everything, EPOL, update): at, xrdp; see ")
