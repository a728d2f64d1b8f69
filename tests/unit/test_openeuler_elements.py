"""The openEuler-only element scripts, run against a root made of openEuler's own files.

Each script runs the way diskimage-builder runs it: inside a chroot (a private mount namespace: the test root
gets the host's /usr through an overlay, so bash, awk, sed and python3 exist but nothing written lands on the
host), with every element's environment.d sourced first in DIB's order. The root's /etc comes from
tests/openeuler-root/ (see its README for where each file came from). The tools that cannot run here (dnf,
rpm, dracut, modinfo, grub2-editenv, cloud-init, systemctl) are the recording stand-ins in
tests/openeuler-root/fakes/; the fake dnf refuses what a closed build network would not allow (an active
metalink, gpgcheck off, a key URL). The tests assert on the files the scripts leave.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import diskimage_builder
import pytest
import yaml

from eulerpub import profiles
from tests.unit.dib_target import install_bin

REPO = Path(__file__).resolve().parents[2]
ELEMENTS = REPO / "elements"
DATA = REPO / "tests" / "openeuler-root"
DIB = Path(diskimage_builder.__file__).parent
RELEASES = ["24.03-LTS-SP1", "22.03-LTS-SP4"]
MIRROR = "http://mirror.test/openeuler"
KEYS = ["RPM-GPG-KEY-openEuler", "RPM-GPG-KEY-openEuler-EulerMaker"]
# The elements whose environment.d a build of the hpc/desktop profiles on openEuler sources (DIB's own
# bootloader one included: its default command line is what 20-openeuler-bootloader-cmdline overrides).
ENV_ELEMENTS = [ELEMENTS / "openeuler", ELEMENTS / "openeuler-cloud", ELEMENTS / "desktop",
                ELEMENTS / "hpc-toolchain", DIB / "elements" / "bootloader"]


def _can_unshare() -> bool:
    """As root: whether this kernel/container gives us mount namespaces (unshare -m)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.needs_root("chroots into openEuler's files need root"),
    pytest.mark.skipif(os.geteuid() == 0 and not _can_unshare(), reason="needs mount namespaces (unshare -m)"),
]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


class OpenEulerRoot:
    """A root directory laid out like the official image's /etc, plus the fakes."""

    def __init__(self, base: Path, release: str) -> None:
        self.root = base / "root"
        self.upper = base / "usr-upper"
        self.work = base / "usr-work"
        self.release = release
        shutil.copytree(DATA / "common", self.root, symlinks=True)
        shutil.copytree(DATA / release, self.root, symlinks=True, dirs_exist_ok=True)
        for d in ("usr", "dev", "tmp", "root", "var/log", "var/tmp", "boot", "opt/eulerpub-fakes/bin",
                  "tmp/in_target.d/environment.d", "etc/dib-manifests"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)
        # host plumbing the host's binaries need (Debian resolves awk through /etc/alternatives)
        shutil.copytree("/etc/alternatives", self.root / "etc" / "alternatives", symlinks=True)
        if Path("/etc/ld.so.cache").exists():
            shutil.copy2("/etc/ld.so.cache", self.root / "etc" / "ld.so.cache")
        for link in ("bin", "sbin", "lib", "lib64"):
            (self.root / link).symlink_to(f"usr/{link}")
        for d in (self.upper / "bin", self.upper / "share" / "pkg-map", self.work):
            d.mkdir(parents=True)
        # openEuler has no apt-get: hide the host's (an overlay whiteout), so the hygiene script takes the dnf path.
        os.mknod(self.upper / "bin" / "apt-get", 0o600 | 0o020000, os.makedev(0, 0))
        for fake in (DATA / "fakes").iterdir():
            shutil.copy2(fake, self.root / "opt" / "eulerpub-fakes" / "bin" / fake.name)
        install_bin(self.upper, DIB / "elements" / "pkg-map" / "bin")
        for element in ENV_ELEMENTS:
            if (element / "pkg-map").is_file():
                shutil.copy2(element / "pkg-map", self.upper / "share" / "pkg-map" / element.name)
            for env_file in sorted((element / "environment.d").glob("*")):
                shutil.copy2(env_file, self.root / "tmp/in_target.d/environment.d" / env_file.name)
        self.write("opt/eulerpub-fakes/available", "")
        self.write("opt/eulerpub-fakes/installed", "")
        self.write("opt/eulerpub-fakes/modules", "")

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> str:
        return self.path(rel).read_text()

    def write(self, rel: str, text: str) -> None:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def calls(self) -> list[str]:
        log = self.path("/var/log/eulerpub-fake-calls")
        return log.read_text().splitlines() if log.exists() else []

    def run(self, element: str, phase: str, script: str, env: dict[str, str] | None = None) -> Run:
        """Run one element script in the chroot, after sourcing every environment.d like DIB does."""
        src = ELEMENTS / element / phase / script
        dest = self.root / "tmp/in_target.d" / phase / script
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return self.sh("for f in /tmp/in_target.d/environment.d/*; do . \"$f\"; done; "
                       f"exec /tmp/in_target.d/{phase}/{script}", env)

    def sh(self, inner: str, env: dict[str, str] | None = None) -> Run:
        """A bash command in the chroot, with the in-target PATH (the fakes first)."""
        variables = {"PATH": "/opt/eulerpub-fakes/bin:/usr/local/bin:/usr/sbin:/usr/bin", "HOME": "/root",
                     "LC_ALL": "C", "ARCH": "x86_64", "DIB_RELEASE": self.release,
                     "DIB_MANIFEST_IMAGE_DIR": "/etc/dib-manifests",
                     **(env or {})}
        chroot = ["chroot", str(self.root), "/usr/bin/env", "-i",
                  *(f"{k}={v}" for k, v in variables.items()), "/bin/bash", "-c", inner]
        setup = (f"mount -t overlay overlay -o lowerdir=/usr,upperdir={self.upper},workdir={self.work} "
                 f"{self.root}/usr && mount --bind /dev {self.root}/dev && exec {shlex.join(chroot)}")
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup],
                              capture_output=True, text=True, timeout=120)
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(params=RELEASES)
def oe(request: pytest.FixtureRequest, tmp_path: Path) -> OpenEulerRoot:
    """A root per supported release, for the scripts that read release-specific files (repos, grub defaults)."""
    return OpenEulerRoot(tmp_path, request.param)


@pytest.fixture
def oe1(tmp_path: Path) -> OpenEulerRoot:
    """One release's root, for the scripts whose input files are the same on every release."""
    return OpenEulerRoot(tmp_path, RELEASES[0])


def sections(text: str) -> dict[str, dict[str, str]]:
    """The active key=value lines of a .repo file, per section (comments dropped)."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = out.setdefault(line.strip("[]"), {})
        elif "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return out


def genuine_repo(release: str) -> str:
    return (DATA / release / "etc/yum.repos.d/openEuler.repo").read_text()


def ok(run: Run) -> Run:
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    return run


# --- item 1 and 4: build-time repositories, keys ---------------------------------------------------------------

def test_build_repos_use_only_the_mirror_and_local_keys(oe: OpenEulerRoot) -> None:
    ok(oe.run("openeuler", "pre-install.d", "01-openeuler-repos", {"DIB_EULER_MIRROR": MIRROR}))
    text = oe.read("/etc/yum.repos.d/openEuler.repo")
    repos = sections(text)
    assert set(repos) == set(sections(genuine_repo(oe.release)))
    keys = " ".join(f"file:///etc/pki/rpm-gpg/{k}" for k in KEYS)
    for name, repo in repos.items():
        assert "metalink" not in repo and "mirrorlist" not in repo, name
        assert repo["baseurl"].startswith(f"{MIRROR}/openEuler-{oe.release}/"), name
        assert repo["gpgcheck"] == "1" and repo["gpgkey"] == keys, name
    assert "repo.openeuler.org" not in "\n".join(r["baseurl"] for r in repos.values())
    # the metalink lines are kept as comments (what a reader of the build log sees) ...
    assert text.count("#metalink=https://mirrors.openeuler.org/metalink") == len(repos)
    # ... the debuginfo and source repos are off, the rest on
    off = {n for n, r in repos.items() if r["enabled"] == "0"}
    assert off == {"debuginfo", "source", "update-source"}
    # every key the image ships is imported, none fetched
    imported = oe.read("/var/lib/eulerpub-fake-rpm/imported").split("\n")
    assert sorted(line.split()[0] for line in imported if line) == [f"/etc/pki/rpm-gpg/{k}" for k in KEYS]
    # and a closed-network dnf accepts the result (it refuses an active metalink, gpgcheck off, a key URL)
    oe.write("/opt/eulerpub-fakes/available", "\n".join(_bootloader_names()) + "\n")
    listed = ok(oe.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages")).stdout
    assert f"{len(set(_bootloader_names()))} requested packages resolved in OS, everything, EPOL, update" in listed


def test_the_genuine_repo_file_is_what_a_closed_network_dnf_refuses(oe: OpenEulerRoot) -> None:
    """The fake dnf's rule is the reason for item 1: on the official file it stops at the first metalink."""
    oe.write("/tmp/package-installs.json", json.dumps({"install.d": {"install": [["gcc", "hpc-toolchain"]]}}))
    run = oe.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages")
    assert run.returncode != 0
    assert "would fetch its metalink https://mirrors.openeuler.org/metalink?repo=$releasever/OS" in run.stderr


def test_missing_gpg_key_is_one_sentence(oe1: OpenEulerRoot) -> None:
    oe1.path("/etc/pki/rpm-gpg/RPM-GPG-KEY-openEuler").unlink()
    run = oe1.run("openeuler", "pre-install.d", "01-openeuler-repos")
    assert run.returncode == 1
    assert run.stderr.strip() == ("openeuler: GPG key /etc/pki/rpm-gpg/RPM-GPG-KEY-openEuler is missing from "
                                  "the base image")


# --- item 2: the published image's repositories ----------------------------------------------------------------

def test_image_gets_the_official_repos_back(oe: OpenEulerRoot) -> None:
    ok(oe.run("openeuler", "pre-install.d", "01-openeuler-repos", {"DIB_EULER_MIRROR": MIRROR}))
    ok(oe.run("openeuler", "finalise.d", "96-openeuler-image-repos", {"DIB_EULER_MIRROR": MIRROR}))
    text = oe.read("/etc/yum.repos.d/openEuler.repo")
    assert "mirror.test" not in text
    genuine = genuine_repo(oe.release).splitlines()
    keys = "gpgkey=" + " ".join(f"file:///etc/pki/rpm-gpg/{k}" for k in KEYS)
    # line for line the official file, except that gpgkey names the imported local keys
    assert text.splitlines() == [keys if line.startswith("gpgkey=") else line for line in genuine]
    assert not oe.path("/var/lib/eulerpub").exists()


def test_image_mirror_of_the_profile(oe: OpenEulerRoot) -> None:
    users = "https://mirrors.example.edu/openeuler"
    env = {"DIB_EULER_MIRROR": MIRROR, "DIB_EULER_IMAGE_MIRROR": users}
    ok(oe.run("openeuler", "pre-install.d", "01-openeuler-repos", env))
    ok(oe.run("openeuler", "finalise.d", "96-openeuler-image-repos", env))
    repos = sections(oe.read("/etc/yum.repos.d/openEuler.repo"))
    assert all(r["baseurl"].startswith(f"{users}/openEuler-{oe.release}/") for r in repos.values())
    assert not any("metalink" in r for r in repos.values())
    assert all(r["enabled"] == "1" for r in repos.values())  # the official file's state, not the build's


# --- item 3: kernel command line -------------------------------------------------------------------------------

def _cmdline(oe: OpenEulerRoot) -> list[str]:
    line = next(x for x in oe.read("/etc/default/grub").splitlines() if x.startswith("GRUB_CMDLINE_LINUX="))
    return line.split("=", 1)[1].strip('"').split()


def test_hpc_drops_softlockup_panic_only(oe: OpenEulerRoot) -> None:
    before = _cmdline(oe)
    hpc = profiles.load_profile("hpc")
    ok(oe.run("openeuler-cloud", "post-install.d", "61-openeuler-cloud-cmdline", dict(hpc.env)))
    after = _cmdline(oe)
    assert after == [w for w in before if w != "softlockup_panic=1"]
    assert "panic=3" in after and "oops=panic" in after
    # the rest of the grub defaults untouched
    rest = [x for x in oe.read("/etc/default/grub").splitlines() if not x.startswith("GRUB_CMDLINE_LINUX=")]
    genuine = (DATA / oe.release / "etc/default/grub").read_text().splitlines()
    assert rest == [x for x in genuine if not x.startswith("GRUB_CMDLINE_LINUX=")]


def test_minimal_keeps_the_official_command_line(oe: OpenEulerRoot) -> None:
    before = oe.read("/etc/default/grub")
    minimal = profiles.load_profile("minimal")
    ok(oe.run("openeuler-cloud", "post-install.d", "61-openeuler-cloud-cmdline", dict(minimal.env)))
    assert oe.read("/etc/default/grub") == before


def test_grubenv_kernelopts_lose_the_same_words(oe1: OpenEulerRoot) -> None:
    oe1.write("/boot/grub2/grubenv", "saved_entry=x\nkernelopts=root=UUID=1 ro softlockup_panic=1 panic=3\n")
    ok(oe1.run("openeuler-cloud", "post-install.d", "61-openeuler-cloud-cmdline",
              {"DIB_EULER_CMDLINE_DROP": "softlockup_panic=1"}))
    assert "kernelopts=root=UUID=1 ro panic=3" in oe1.read("/boot/grub2/grubenv").splitlines()


def test_dib_bootloader_adds_no_nomodeset(oe1: OpenEulerRoot) -> None:
    """DIB's bootloader default ("nofb nomodeset gfxpayload=text") is gone once every environment.d is read in
    DIB's order (by file name across elements), however often they are read (once per phase)."""
    env_dir = oe1.root / "tmp/in_target.d/environment.d"
    names = sorted(p.name for p in env_dir.iterdir())
    assert names.index("10-bootloader-default-cmdline") < names.index("20-openeuler-bootloader-cmdline.bash")
    shown = subprocess.run(["bash", "-c", 'for i in 1 2; do for f in "$1"/*; do . "$f"; done; done; '
                            'printf "[%s]" "$DIB_BOOTLOADER_DEFAULT_CMDLINE"', "-", str(env_dir)],
                           capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    assert shown.stdout == "[]"


# --- item 5: languages -----------------------------------------------------------------------------------------

def test_desktop_installs_zh_cn(oe1: OpenEulerRoot) -> None:
    ok(oe1.run("desktop", "pre-install.d", "02-desktop-langs"))
    assert oe1.read("/etc/rpm/macros.langs") == "%_install_langs C:en_US:en_US.UTF-8:zh_CN:zh_CN.UTF-8\n"


def test_profile_chooses_the_languages(oe1: OpenEulerRoot) -> None:
    ok(oe1.run("desktop", "pre-install.d", "02-desktop-langs", {"DIB_EULER_INSTALL_LANGS": "C:en_US:ja_JP"}))
    assert oe1.read("/etc/rpm/macros.langs") == "%_install_langs C:en_US:ja_JP\n"
    bad = oe1.run("desktop", "pre-install.d", "02-desktop-langs", {"DIB_EULER_INSTALL_LANGS": "en_US; rm -rf /"})
    assert bad.returncode == 1 and "locales separated by ':'" in bad.stderr


# --- item 6: leftovers of the official recipe -------------------------------------------------------------------

def test_grub_superuser_removed_by_default(oe1: OpenEulerRoot) -> None:
    before = oe1.read("/etc/grub.d/00_header")
    assert 'set superusers="root"' in before
    ok(oe1.run("openeuler-cloud", "post-install.d", "62-openeuler-cloud-grub-superuser"))
    after = oe1.read("/etc/grub.d/00_header")
    assert "superusers" not in after and "password_pbkdf2" not in after
    head = before[:before.index("cat <<EOF\nset superusers")]
    assert after == head  # everything before the appended block is untouched
    assert os.access(oe1.path("/etc/grub.d/00_header"), os.X_OK)


def test_grub_superuser_kept_on_request(oe1: OpenEulerRoot) -> None:
    before = oe1.read("/etc/grub.d/00_header")
    ok(oe1.run("openeuler-cloud", "post-install.d", "62-openeuler-cloud-grub-superuser",
              {"DIB_EULER_GRUB_SUPERUSER": "keep"}))
    assert oe1.read("/etc/grub.d/00_header") == before


def test_security_tool_kept_by_default_and_removable(oe1: OpenEulerRoot) -> None:
    oe1.write("/opt/eulerpub-fakes/installed", "security-tool\n")
    ok(oe1.run("openeuler", "pre-install.d", "01-openeuler-repos", {"DIB_EULER_MIRROR": MIRROR}))  # post-install
    ok(oe1.run("openeuler-cloud", "post-install.d", "63-openeuler-cloud-security-tool"))
    assert not [c for c in oe1.calls() if c.startswith("dnf")]
    ok(oe1.run("openeuler-cloud", "post-install.d", "63-openeuler-cloud-security-tool",
              {"DIB_EULER_SECURITY_TOOL": "remove"}))
    assert "dnf -y remove security-tool" in oe1.calls()


# --- item 7: package resolution ----------------------------------------------------------------------------------

def squashed_package_installs(elements: list[str]) -> dict:
    """DIB's own package-installs-squash over our elements: the /tmp/package-installs.json a build writes."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"pi-{os.getpid()}.json"
    search = f"{ELEMENTS}:{DIB / 'elements'}"
    subprocess.run([sys.executable, str(DIB / "elements/package-installs/bin/package-installs-squash"),
                    f"--elements={' '.join(elements)}", f"--path={search}", str(out)],
                   check=True, capture_output=True, env={**os.environ, "DISTRO_NAME": "openeuler"})
    data = json.loads(out.read_text())
    out.unlink()
    return data


def _mapped(name: str) -> list[str]:
    maps = {}
    for element in ("openeuler-cloud", "hpc-toolchain", "desktop"):
        maps.update(json.loads((ELEMENTS / element / "pkg-map").read_text())["family"]["redhat"])
    return maps.get(name, name).split()


def _bootloader_names(keys: tuple[str, ...] = ("grub-pc", "grub-efi", "grub-efi-x86_64")) -> list[str]:
    """What DIB's bootloader element installs on a redhat-family x86_64 hybrid image (its own pkg-map)."""
    redhat = json.loads((DIB / "elements/bootloader/pkg-map").read_text())["family"]["redhat"]
    return [name for key in keys for name in redhat[key].split()]


def _hpc_names() -> list[str]:
    names = _bootloader_names()
    for element in ("openeuler-cloud", "hpc-toolchain"):
        for key in yaml.safe_load((ELEMENTS / element / "package-installs.yaml").read_text()):
            names += _mapped(key)
    return sorted(set(names))


@pytest.fixture
def hpc_build(tmp_path: Path) -> OpenEulerRoot:
    """The hpc profile's packages on the 24.03-LTS-SP1 root, with build-time repos already rewritten (one
    release: what is resolved does not depend on it, and pkg-map runs once per name)."""
    oe = OpenEulerRoot(tmp_path, "24.03-LTS-SP1")
    oe.write("/tmp/package-installs.json", json.dumps(squashed_package_installs(["openeuler-cloud", "hpc-toolchain"])))
    ok(oe.run("openeuler", "pre-install.d", "01-openeuler-repos", {"DIB_EULER_MIRROR": MIRROR}))
    return oe


def test_all_packages_resolve(hpc_build: OpenEulerRoot) -> None:
    hpc_build.write("/opt/eulerpub-fakes/available", "\n".join(_hpc_names()) + "\n")
    run = ok(hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages"))
    assert f"{len(_hpc_names())} requested packages resolved in OS, everything, EPOL, update" in run.stdout
    assert hpc_build.read("/etc/dib-manifests/eulerpub-skipped-packages") == ""
    queried = [c for c in hpc_build.calls() if c.startswith("dnf -q repoquery")]
    assert len(queried) == 1  # one query for every name


def test_missing_names_stop_the_build_in_one_sentence(hpc_build: OpenEulerRoot) -> None:
    absent = {"at", "sshpass", "cloud-utils-growpart"}
    hpc_build.write("/opt/eulerpub-fakes/available",
                    "".join(f"{n}\n" for n in _hpc_names() if n not in absent))
    run = hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages",
                        {"DIB_EULER_PROFILE_PACKAGES": "htop"})
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "openeuler: 4 requested package(s) are in none of the enabled repositories (OS, everything, EPOL, update): "
        "at, cloud-utils-growpart, htop, sshpass"]


def test_the_bootloader_packages_are_resolved_too(hpc_build: OpenEulerRoot) -> None:
    """shim-x64/grub2-efi-x64 come from DIB's bootloader element in finalise.d, after every package-installs
    phase: a missing one must stop the build here, not at the very end."""
    assert {"shim-x64", "grub2-efi-x64", "grub2-tools"} <= set(_bootloader_names())
    hpc_build.write("/opt/eulerpub-fakes/available", "".join(f"{n}\n" for n in _hpc_names() if n != "shim-x64"))
    run = hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages")
    assert run.returncode == 1 and run.stderr.strip().endswith("(OS, everything, EPOL, update): shim-x64")
    # a BIOS-only (MBR) image asks for no EFI packages
    ok(hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages", {"DIB_BLOCK_DEVICE": "mbr"}))


def test_aarch64_resolves_the_arm_efi_loader_and_shim(hpc_build: OpenEulerRoot) -> None:
    """On aarch64 (DIB -a arm64, GPT + ESP) DIB's bootloader element installs grub2-efi-aa64 and shim-aa64 fresh for
    the new layout (the base's EFI tree is dropped): a release without them stops the build in pre-install.d."""
    arm = {"ARCH": "arm64", "DIB_BLOCK_DEVICE": "efi"}
    wanted = _bootloader_names(("grub-efi", "grub-efi-arm64"))
    assert {"grub2-efi-aa64", "shim-aa64"} <= set(wanted)
    names = sorted(set(_hpc_names()) - set(_bootloader_names()) | set(wanted))
    hpc_build.write("/opt/eulerpub-fakes/available", "".join(f"{n}\n" for n in names if n != "shim-aa64"))
    run = hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages", arm)
    assert run.returncode == 1 and run.stderr.strip().endswith("(OS, everything, EPOL, update): shim-aa64")
    hpc_build.write("/opt/eulerpub-fakes/available", "".join(f"{n}\n" for n in names))
    ok(hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages", arm))


def test_a_provided_name_counts_as_found(hpc_build: OpenEulerRoot) -> None:
    lines = [n for n in _hpc_names() if n != "python3"] + ["python3-3.11 python3"]
    hpc_build.write("/opt/eulerpub-fakes/available", "\n".join(lines) + "\n")
    ok(hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages"))


def test_optional_packages_are_skipped_and_recorded(hpc_build: OpenEulerRoot) -> None:
    hpc_build.write("/opt/eulerpub-fakes/available", "".join(f"{n}\n" for n in _hpc_names() if n != "sshpass"))
    run = ok(hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages",
                           {"DIB_EULER_OPTIONAL_PACKAGES": "sshpass xrdp"}))
    assert "WARNING: optional package sshpass is in none of the enabled repositories" in run.stdout
    assert hpc_build.read("/etc/dib-manifests/eulerpub-skipped-packages") == "sshpass\n"
    left = json.loads(hpc_build.read("/tmp/package-installs.json"))
    names = {name for phase in left.values() for name, _ in phase.get("install", [])}
    assert "sshpass" not in names
    # what remains is every other name, already mapped (dracut, not initramfs-generator)
    assert names == set(_hpc_names()) - set(_bootloader_names()) - {"sshpass"}
    assert {"dracut", "cloud-utils-growpart", "systemd"} <= names


def test_an_optional_profile_package_is_still_required(hpc_build: OpenEulerRoot) -> None:
    hpc_build.write("/opt/eulerpub-fakes/available", "\n".join(_hpc_names()) + "\n")
    run = hpc_build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages",
                        {"DIB_EULER_PROFILE_PACKAGES": "htop", "DIB_EULER_OPTIONAL_PACKAGES": "htop"})
    assert run.returncode == 1 and "htop" in run.stderr


# --- item 8: initramfs drivers, datasources, hygiene -----------------------------------------------------------

KVER = "6.6.0-1.oe2403sp1.x86_64"  # a made-up version in openEuler's form (dist tag oe2403sp1)


def test_initramfs_gets_the_drivers_the_kernel_has(oe1: OpenEulerRoot) -> None:
    (oe1.upper / "lib" / "modules" / KVER / "kernel").mkdir(parents=True)
    # openEuler's 6.6 x86 defconfig builds nvme, ena, virtio_* and xen-blkfront as modules (no xen-netfront here)
    oe1.write("/opt/eulerpub-fakes/modules", "nvme\nena\nvirtio_blk\nvirtio_net\nvirtio_scsi\nvirtio_pci\n"
             "virtio_console\nxen-blkfront\n")
    run = ok(oe1.run("openeuler-cloud", "post-install.d", "60-openeuler-cloud-initramfs"))
    assert f"kernel {KVER} has no xen-netfront driver, skipped" in run.stdout
    assert oe1.read("/etc/dracut.conf.d/90-eulerpub-cloud.conf") == (
        'hostonly="no"\nadd_drivers+=" nvme ena virtio_blk virtio_net virtio_scsi virtio_pci virtio_console '
        'xen-blkfront "\n')
    assert f"dracut -f /boot/initramfs-{KVER}.img {KVER}" in oe1.calls()


def test_datasources_from_the_registry(oe1: OpenEulerRoot) -> None:
    oe1.path("/etc/cloud/cloud.cfg.d").mkdir(parents=True)  # cloud-init's package makes it
    oe1.write("/etc/cloud/eulerpub-datasources", "Ec2\nOpenStack\nEc2\nConfigDrive\n")
    ok(oe1.run("openeuler-cloud", "post-install.d", "70-openeuler-cloud-datasources"))
    assert oe1.read("/etc/cloud/cloud.cfg.d/90-eulerpub-datasources.cfg") == (
        "datasource_list: [ NoCloud, Ec2, OpenStack, ConfigDrive, None ]\n")
    assert not oe1.path("/etc/cloud/eulerpub-datasources").exists()


def test_hygiene_leaves_no_build_traces(oe1: OpenEulerRoot) -> None:
    for rel in ("/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key.pub", "/var/lib/dhclient/x.lease",
                "/var/cache/dnf/OS/repomd.xml", "/root/.bash_history", "/var/tmp/build-leftover"):
        oe1.write(rel, "x")
    oe1.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    oe1.write("/etc/ssh/sshd_config", "PasswordAuthentication no\n")
    ok(oe1.run("openeuler-cloud", "finalise.d", "98-openeuler-cloud-hygiene"))
    assert oe1.read("/etc/machine-id") == ""
    assert not list(oe1.path("/etc/ssh").glob("ssh_host_*"))
    assert oe1.path("/etc/ssh/sshd_config").exists()
    for rel in ("/var/lib/dhclient/x.lease", "/var/cache/dnf/OS", "/root/.bash_history", "/var/tmp/build-leftover"):
        assert not oe1.path(rel).exists(), rel
    assert "cloud-init clean --logs" in oe1.calls() and "dnf clean all" in oe1.calls()


def test_cmdline_keeps_a_last_line_without_newline(oe: OpenEulerRoot) -> None:
    text = oe.read("/etc/default/grub").rstrip("\n")
    oe.write("/etc/default/grub", text)
    ok(oe.run("openeuler-cloud", "post-install.d", "61-openeuler-cloud-cmdline",
              {"DIB_EULER_CMDLINE_DROP": "softlockup_panic=1"}))
    assert oe.read("/etc/default/grub").splitlines()[-1] == text.splitlines()[-1]


def test_desktop_without_a_skipped_xrdp(oe1: OpenEulerRoot) -> None:
    for unit in ("gdm.service", "vncserver@.service"):  # what the packages install (not systemctl cat: no systemd)
        oe1.write(f"/etc/systemd/system/{unit}", "[Unit]\n")
    oe1.write("/opt/eulerpub-fakes/bin/vncpasswd", "#!/bin/sh\ncat\n")
    oe1.path("/opt/eulerpub-fakes/bin/vncpasswd").chmod(0o755)
    run = ok(oe1.run("desktop", "post-install.d", "60-desktop-services", {"DIB_EULER_OPTIONAL_PACKAGES": "xrdp"}))
    assert "WARNING: xrdp was skipped; no RDP" in run.stdout
    assert {"systemctl enable gdm.service", "systemctl set-default graphical.target"} <= set(oe1.calls())
    # No VNC user in the image (HPC-NOW deletes the cloud user): the helper maps one at boot.
    assert oe1.read("/etc/tigervnc/vncserver.users") == ""
    assert not any(call.startswith("systemctl enable vncserver@") for call in oe1.calls())
    helper = (oe1.upper / "local/sbin/eulerpub-desktop-vnc").read_text()  # /usr is an overlay while it runs
    assert "/opt/eulerpub-fakes/bin/vncpasswd -f" in helper and 'systemctl enable --now "vncserver@$display' in helper
    assert "org.freedesktop.color-manager." in oe1.read("/etc/polkit-1/rules.d/45-eulerpub-colord.rules")
    # A profile that names a VNC user present in the image gets it enabled on :1.
    ok(oe1.run("desktop", "post-install.d", "60-desktop-services",
               {"DIB_EULER_OPTIONAL_PACKAGES": "xrdp", "DIB_EULER_DESKTOP_VNC_USER": "hpc"}))
    assert oe1.read("/etc/tigervnc/vncserver.users") == ":1=hpc\n"
    assert "systemctl enable vncserver@:1.service" in oe1.calls()
    # xrdp required (not optional) and missing: the build stops
    assert oe1.run("desktop", "post-install.d", "60-desktop-services").returncode == 1


def test_cloud_init_units_enabled_by_their_unit_files(oe1: OpenEulerRoot) -> None:
    """The units are found by their files (systemctl cat fails in a chroot); an alias name is never enabled."""
    for unit in ("cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service",
                 "sshd.service", "chronyd.service"):
        oe1.write(f"/etc/systemd/system/{unit}", "[Unit]\n")  # /usr is the host's, overlaid, while it runs
    oe1.path("/etc/systemd/system/chrony.service").symlink_to("chronyd.service")  # an alias, as Debian's sshd
    oe1.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    oe1.write("/etc/shadow", "root:!:19000:0:99999:7:::\n")
    oe1.write("/etc/group", "root:x:0:\n")
    oe1.write("/etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication yes\n")
    ok(oe1.run("openeuler-cloud", "install.d", "50-openeuler-cloud-init"))
    enabled = {call for call in oe1.calls() if call.startswith("systemctl enable")}
    assert {f"systemctl enable {u}" for u in ("cloud-init-local.service", "cloud-init.service",
                                              "cloud-config.service", "cloud-final.service",
                                              "sshd.service", "chronyd.service")} <= enabled
    assert "systemctl enable chrony.service" not in enabled


def test_unit_installed_counts_a_unit_file_only(oe1: OpenEulerRoot) -> None:
    """eulerpub-lib's helper, from /usr/local/bin as install-bin puts it: a unit file counts, an alias does not."""
    oe1.write("/etc/systemd/system/eulerpub-a.service", "[Unit]\n")
    (oe1.upper / "lib/systemd/system").mkdir(parents=True, exist_ok=True)  # the chroot's /usr/lib (an overlay)
    (oe1.upper / "lib/systemd/system/eulerpub-b.service").write_text("[Unit]\n")
    oe1.path("/etc/systemd/system/eulerpub-alias.service").symlink_to("eulerpub-a.service")
    run = ok(oe1.sh("command -v eulerpub-unit-installed; "
                    "for u in eulerpub-a.service eulerpub-b.service eulerpub-alias.service eulerpub-none.service; "
                    "do eulerpub-unit-installed $u; echo \"$u $?\"; done"))
    assert run.stdout.splitlines() == ["/usr/local/bin/eulerpub-unit-installed", "eulerpub-a.service 0",
                                       "eulerpub-b.service 0", "eulerpub-alias.service 1", "eulerpub-none.service 1"]
    bad = oe1.sh("eulerpub-unit-installed")
    assert (bad.returncode, bad.stderr) == (2, "usage: eulerpub-unit-installed UNIT (a unit file name such as "
                                               "sshd.service)\n")
