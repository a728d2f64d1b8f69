"""The hpcnow check end to end without QEMU: a real sshd serving a chroot that went through the openeuler-cloud
element (one policy or the other) and the replay of HPC-NOW's user_data, the check run from the host through the
real sshpass, ssh and sudo.

Only what the chroot cannot run is a stand-in (atd, munged, environment-modules' `module`), placed in
/usr/local/bin of the chroot, which sshd's default PATH searches first. The hardened root must fail with the
sshd policy named (the reason the e2e layer sees on the hpc image); the hpcnow root must pass.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eulerpub import bootcheck, hpcnowcheck
from tests.unit.test_hpcnow_sshd import CLOUD_INIT_DROPIN, DEBIAN_SSHD_CONFIG, Root, ok
from tests.unit.test_hpcnow_sshd import pytestmark as CHROOT_MARKS

pytestmark = [*CHROOT_MARKS, pytest.mark.skipif(not Path("/usr/bin/sshpass").exists() or
                                                not Path("/usr/bin/sudo").exists(),
                                                reason="needs sshpass and sudo (scripts/install-host-deps.sh)")]

PASSWORD = "Live-Hpc-Now-7"
CHECK_USER = "eulercheck"
# Stand-ins for what the guest runs as daemons: atd runs an `at now` job at once, munged answers once a key exists.
STUBS = {
    "at": 'job=$(cat); [ "$1" = now ] && (sh -c "$job" &)\n',
    "mungekey": "mkdir -p /etc/munge && head -c 128 /dev/urandom >/etc/munge/munge.key\n",
    "munge": 'echo "MUNGE:AwQDAAA:"\n',
    "unmunge": 'grep -q "^MUNGE:" && [ -s /etc/munge/munge.key ] && echo "STATUS: Success (0)"\n',
    "systemctl": 'echo "systemctl $*" >>/var/log/fake-calls\n',
}
MODULES = "module() { printf '/usr/share/modules/modulefiles:\\nmpi/mpich\\nmpi/openmpi\\n' >&2; }\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(base: Path, policy: str) -> tuple[Root, Path]:
    root = Root(base)
    root.write("/etc/ssh/sshd_config", DEBIAN_SSHD_CONFIG.read_text())
    ok(root.element(policy))
    root.write("/etc/ssh/sshd_config.d/50-cloud-init.conf", CLOUD_INIT_DROPIN)  # cloud-init's ssh_pwauth: false
    # the check user the boot test's seed creates (the replay deletes openeuler), with the seeded key and sudo
    root.write("/etc/passwd", root.read("/etc/passwd") + f"{CHECK_USER}:x:1001:1001::/home/{CHECK_USER}:/bin/bash\n"
               "munge:x:110:110::/nonexistent:/usr/sbin/nologin\n")
    root.write("/etc/shadow", root.read("/etc/shadow") + f"{CHECK_USER}:*:19000:0:99999:7:::\n")
    root.write("/etc/group", root.read("/etc/group") + f"{CHECK_USER}:x:1001:\nmunge:x:110:\n")
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    root.write(f"/home/{CHECK_USER}/.ssh/authorized_keys", (base / "id_ed25519.pub").read_text())
    for rel in ("", "/.ssh", "/.ssh/authorized_keys"):
        os.chown(root.path(f"/home/{CHECK_USER}{rel}"), 1001, 1001)
    root.path(f"/home/{CHECK_USER}/.ssh").chmod(0o700)
    root.write("/etc/sudoers", f"root ALL=(ALL) ALL\n{CHECK_USER} ALL=(ALL) NOPASSWD:ALL\n")
    root.path("/etc/sudoers").chmod(0o440)
    ok(root.hpcnow_user_data(PASSWORD))
    local_bin = root.upper / "local" / "bin"  # the chroot's /usr/local/bin (its /usr is an overlay)
    local_bin.mkdir(parents=True, exist_ok=True)  # install_bin made it (eulerpub-lib's helpers)
    for name, body in STUBS.items():
        (local_bin / name).write_text(f"#!/bin/sh\n{body}")
        (local_bin / name).chmod(0o755)
    root.write("/etc/profile", MODULES)
    return root, key


@pytest.fixture
def guest(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[bootcheck.Guest, Root]]:
    monkeypatch.setattr(hpcnowcheck, "LOGIN_PAUSE_S", 0.0)
    monkeypatch.setattr(hpcnowcheck, "LOGIN_ATTEMPTS", 2)  # a refused password costs sshd's few seconds each
    root, key = prepare(tmp_path, request.param)
    port = free_port()
    sshd = ["chroot", str(root.root), "/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-o", "ListenAddress=127.0.0.1",
            "-o", "PidFile=none"]
    setup = (f"mount -t overlay overlay -o lowerdir=/usr,upperdir={root.upper},workdir={root.work} {root.root}/usr"
             f" && mount --bind /dev {root.root}/dev && mkdir -p {root.root}/proc && mount -t proc proc "
             f"{root.root}/proc && exec {shlex.join(sshd)}")
    log = open(tmp_path / "sshd.log", "w")  # noqa: SIM115 (open for the daemon's life)
    daemon = subprocess.Popen(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup],
                              stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert daemon.poll() is None and time.monotonic() < deadline, (tmp_path / "sshd.log").read_text()
            time.sleep(0.1)
        yield bootcheck.Guest(port, key, CHECK_USER), root
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
        log.close()


@pytest.mark.parametrize("guest", ["hpcnow"], indirect=True)
def test_hpcnow_policy_lets_root_in_with_its_password_and_the_check_passes(guest) -> None:
    target, root = guest
    result = hpcnowcheck.check(target, PASSWORD)
    assert result.passed, result.detail
    assert "no literal step on this guest: chpasswd" in result.detail
    assert "Accepted password for root" in (root.root.parent / "sshd.log").read_text()


@pytest.mark.parametrize("guest", ["hardened"], indirect=True)
def test_hardened_policy_fails_the_check_naming_the_sshd_policy(guest) -> None:
    target, root = guest
    result = hpcnowcheck.check(target, PASSWORD)
    assert not result.passed
    appended = len(root.read("/etc/ssh/sshd_config").splitlines())  # HPC-NOW's user_data appends its line last
    assert result.detail == (
        "root password login through sshpass failed (password refused: Permission denied, please try again.): "
        "the image's sshd policy refuses it: permitrootlogin without-password after HPC-NOW's edits: set by "
        "'PermitRootLogin prohibit-password' at /etc/ssh/sshd_config:4, which sshd reads first; it ignores the "
        f"later 'PermitRootLogin yes' at /etc/ssh/sshd_config:{appended}")
    assert "Failed password for root" in (root.root.parent / "sshd.log").read_text()


@pytest.mark.parametrize("guest", ["hpcnow"], indirect=True)
def test_a_wrong_password_is_not_blamed_on_the_policy(guest) -> None:
    target, _ = guest
    result = hpcnowcheck.check(target, "not-the-password")
    assert not result.passed
    assert "although sshd allows it (permitrootlogin yes, passwordauthentication yes)" in result.detail
