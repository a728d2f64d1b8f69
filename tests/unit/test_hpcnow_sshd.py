"""The openeuler-cloud element's sshd policies against HPC-NOW's own sshd edits, judged by the real sshd.

Each test builds a root in a temporary directory (the host's /usr through an overlay, so the real sshd, sed,
chpasswd and userdel run on the root's own /etc and nothing lands on the host), puts a genuine sshd_config in it,
runs the element's install script with a policy, adds what cloud-init writes for `ssh_pwauth: false`, then runs
the hpcnow boot check's user_data (HPC-NOW's first-boot steps) in the same root. `sshd -T` before and after
tells what a real sshd would do: hardened must keep root's password login off even after HPC-NOW's edits;
hpcnow must let those edits turn it on, with the same secure values before them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from eulerpub import hpcnowcheck
from tests.unit.dib_target import install_bin

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "elements" / "openeuler-cloud" / "install.d" / "50-openeuler-cloud-init"
ENV_FILE = REPO / "elements" / "openeuler-cloud" / "environment.d" / "10-openeuler-cloud.bash"
# Debian's pristine sshd_config, as its openssh-server package ships it (the stand-in's; Include of sshd_config.d
# on line 12, no active PermitRootLogin or PasswordAuthentication).
DEBIAN_SSHD_CONFIG = Path("/usr/share/openssh/sshd_config")
# An openEuler-like main config, assembled (openEuler's own file is in none of the sources here): both keywords
# on, the most permissive start; whether openEuler's file has the Include line is unverified, so both forms run.
OPENEULER_LIKE = ("PermitRootLogin yes\nPasswordAuthentication yes\nUsePAM yes\n"
                  "Subsystem sftp /usr/libexec/openssh/sftp-server\n")
# cloud-init's cc_set_passwords with ssh_pwauth: false writes this drop-in when the main config has the line
# "Include /etc/ssh/sshd_config.d/*.conf" (cloudinit/ssh_util.py update_ssh_config, 22.4.2 in Debian 12), and
# otherwise edits the main config's own line.
CLOUD_INIT_DROPIN = "PasswordAuthentication no\n"
INCLUDE = "Include /etc/ssh/sshd_config.d/*.conf\n"
PASSWD = ("root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
          "openeuler:x:1000:1000:Cloud User:/home/openeuler:/bin/bash\n")
SHADOW = "root:!:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\nopeneuler:!:19000:0:99999:7:::\n"
GROUP = "root:x:0:\nadm:x:4:openeuler\nsudo:x:27:openeuler\nopeneuler:x:1000:\n"
# What net-tools' ifconfig prints on a QEMU user-network guest (interfaces sorted by name, so the NIC precedes lo).
IFCONFIG = """ens3: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500
        inet 10.0.2.15  netmask 255.255.255.0  broadcast 10.0.2.255
        inet6 fec0::5054:ff:fe12:3456  prefixlen 64  scopeid 0x40<site>
        ether 52:54:00:12:34:56  txqueuelen 1000  (Ethernet)

lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536
        inet 127.0.0.1  netmask 255.0.0.0
"""


def _can_unshare() -> bool:
    """As root: whether this kernel/container gives us mount namespaces (unshare -m)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.needs_root("chroots need root"),
    pytest.mark.skipif(os.geteuid() == 0 and not _can_unshare(), reason="needs mount namespaces (unshare -m)"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or not DEBIAN_SSHD_CONFIG.exists(),
                       reason="needs openssh-server (scripts/install-host-deps.sh installs it)"),
]


class Root:
    """A root directory with its own /etc; commands run chrooted in a private mount namespace."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.upper, self.work = base / "usr-upper", base / "usr-work"
        for d in ("usr", "dev", "tmp", "root", "run/sshd", "var/log", "etc/ssh/sshd_config.d", "home/openeuler",
                  "fakes", "etc/cloud/cloud.cfg.d"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").chmod(0o1777)
        for link in ("bin", "sbin", "lib", "lib64"):
            (self.root / link).symlink_to(f"usr/{link}")
        for d in ("alternatives", "pam.d", "security"):
            shutil.copytree(f"/etc/{d}", self.root / "etc" / d, symlinks=True)
        for f in ("login.defs", "ld.so.cache", "nsswitch.conf"):
            if Path(f"/etc/{f}").exists():
                shutil.copy2(f"/etc/{f}", self.root / "etc" / f)
        self.upper.mkdir()
        self.work.mkdir()
        install_bin(self.upper)  # eulerpub-lib's helpers on the in-target PATH, as DIB's install-bin puts them
        self.write("/etc/passwd", PASSWD)
        self.write("/etc/shadow", SHADOW)
        self.write("/etc/group", GROUP)
        self.fake("systemctl", 'echo "systemctl $*" >>/var/log/fake-calls\n')
        self.fake("ifconfig", f"cat <<'EOF'\n{IFCONFIG}EOF\n")
        self.fake("at", "cat >/dev/null\n")
        host_key = self.root / "etc/ssh/ssh_host_ed25519_key"  # cloud-init makes the guest's at first boot
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> str:
        return self.path(rel).read_text()

    def write(self, rel: str, text: str) -> None:
        self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        self.path(rel).write_text(text)

    def fake(self, name: str, body: str) -> None:
        self.write(f"/fakes/{name}", f"#!/bin/sh\n{body}")
        self.path(f"/fakes/{name}").chmod(0o755)

    def sh(self, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        variables = {"PATH": "/fakes:/usr/local/bin:/usr/sbin:/usr/bin", "HOME": "/root", "LC_ALL": "C", **(env or {})}
        chroot = ["chroot", str(self.root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()),
                  "/bin/bash", "-c", script]
        setup = (f"mount -t overlay overlay -o lowerdir=/usr,upperdir={self.upper},workdir={self.work} "
                 f"{self.root}/usr && mount --bind /dev {self.root}/dev && exec {shlex.join(chroot)}")
        return subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup],
                              capture_output=True, text=True, timeout=120)

    def element(self, policy: str | None, **env: str) -> subprocess.CompletedProcess[str]:
        """The element's install script, the way DIB runs it: its environment.d sourced first."""
        shutil.copy2(ENV_FILE, self.path("/tmp/env.bash"))
        shutil.copy2(SCRIPT, self.path("/tmp/install"))
        if policy is not None:
            env["DIB_EULER_SSHD_POLICY"] = policy
        return self.sh(". /tmp/env.bash && exec /tmp/install", env)

    def sshd_t(self) -> dict[str, str]:
        done = self.sh("sshd -T -f /etc/ssh/sshd_config")
        assert done.returncode == 0, done.stderr
        values = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
        return {k: values[k] for k in ("permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication")}

    def hpcnow_user_data(self, password: str) -> subprocess.CompletedProcess[str]:
        self.write("/tmp/user-data", hpcnowcheck.user_data_script(password))
        self.path("/tmp/user-data").chmod(0o700)
        return self.sh("exec /tmp/user-data")


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


MAIN_CONFIGS = {
    "debian": lambda: DEBIAN_SSHD_CONFIG.read_text(),
    "openeuler-like with Include": lambda: INCLUDE + OPENEULER_LIKE,
    "openeuler-like without Include": lambda: OPENEULER_LIKE,
}


def prepared(tmp_path: Path, config: str, policy: str | None) -> Root:
    root = Root(tmp_path)
    main = MAIN_CONFIGS[config]()
    root.write("/etc/ssh/sshd_config", main)
    ok(root.element(policy))
    # first boot: cloud-init's ssh_pwauth: false, where cloud-init puts it
    if INCLUDE in main:
        root.write("/etc/ssh/sshd_config.d/50-cloud-init.conf", CLOUD_INIT_DROPIN)
    return root


SECURE = {"permitrootlogin": "without-password", "passwordauthentication": "no", "kbdinteractiveauthentication": "no"}


@pytest.mark.parametrize("config", list(MAIN_CONFIGS))
def test_hardened_keeps_root_password_login_off_after_hpcnow_edits(tmp_path: Path, config: str) -> None:
    root = prepared(tmp_path, config, None)  # the default policy: every profile but hpcnow
    assert root.read("/etc/ssh/sshd_config").splitlines()[3] == "PermitRootLogin prohibit-password"
    assert root.sshd_t() == SECURE
    ok(root.hpcnow_user_data("Hpc-Now-1"))
    after = root.sshd_t()
    assert after["permitrootlogin"] == "without-password"  # HPC-NOW's appended line lost: compute nodes never join
    assert after["passwordauthentication"] == "yes"


@pytest.mark.parametrize("config", list(MAIN_CONFIGS))
def test_hpcnow_policy_is_secure_until_hpcnow_edits_and_then_lets_root_in(tmp_path: Path, config: str) -> None:
    root = prepared(tmp_path, config, "hpcnow")
    text = root.read("/etc/ssh/sshd_config")
    assert [line for line in text.splitlines() if line.lower().startswith("permitrootlogin")] == []
    assert root.sshd_t() == SECURE
    ok(root.hpcnow_user_data("Hpc-Now-1"))
    assert root.sshd_t() == {**SECURE, "permitrootlogin": "yes", "passwordauthentication": "yes"}


def test_hpcnow_policy_drops_permitrootlogin_from_drop_ins(tmp_path: Path) -> None:
    root = Root(tmp_path)
    root.write("/etc/ssh/sshd_config", DEBIAN_SSHD_CONFIG.read_text())
    root.write("/etc/ssh/sshd_config.d/10-vendor.conf", "permitrootlogin without-password\nX11Forwarding no\n")
    ok(root.element("hpcnow"))
    assert root.read("/etc/ssh/sshd_config.d/10-vendor.conf") == "X11Forwarding no\n"
    ok(root.hpcnow_user_data("Hpc-Now-1"))
    assert root.sshd_t()["permitrootlogin"] == "yes"


def test_unknown_policy_is_one_sentence(tmp_path: Path) -> None:
    root = Root(tmp_path)
    root.write("/etc/ssh/sshd_config", OPENEULER_LIKE)
    done = root.element("open")
    assert done.returncode == 1
    assert done.stderr.strip() == "openeuler-cloud: DIB_EULER_SSHD_POLICY must be hardened or hpcnow, not 'open'"
    assert root.read("/etc/ssh/sshd_config") == OPENEULER_LIKE


def test_allow_password_ssh_still_leaves_sshd_alone(tmp_path: Path) -> None:
    root = Root(tmp_path)
    root.write("/etc/ssh/sshd_config", OPENEULER_LIKE)
    ok(root.element("hpcnow", DIB_EULER_ALLOW_PASSWORD_SSH="1"))
    assert root.read("/etc/ssh/sshd_config") == OPENEULER_LIKE
