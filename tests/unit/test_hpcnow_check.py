"""The hpcnow boot check without QEMU: its user_data replay run in a chroot on the real tools (a stub only where
the guest's tool cannot run here), and its decision logic against recorded guest answers.

The root login goes through a stub `sshpass` on PATH that records its argv and whether it got the password in
its environment, and answers what a guest answered; the key login is a fake Guest with recorded outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from eulerpub import hpcnowcheck
from tests.unit.test_hpcnow_sshd import DEBIAN_SSHD_CONFIG, Root, ok, prepared
from tests.unit.test_hpcnow_sshd import pytestmark as CHROOT_MARKS

PASSWORD = "Hpc-Now_pw-1"
REPO = Path(__file__).resolve().parents[2]
MUNGE_SCRIPT = REPO / "elements" / "hpcnow" / "post-install.d" / "60-hpcnow-munge"
CLOUD_INIT_SCRIPT = REPO / "elements" / "hpcnow" / "install.d" / "60-hpcnow-cloud-init"


def in_chroot(test):
    """The replay tests run real tools in a chroot: root, mount namespaces and openssh-server."""
    for mark in CHROOT_MARKS:
        test = mark(test)
    return test


def replay(tmp_path: Path, *, literal_passwd: bool = False, ifconfig: bool = True,
           sshd_unit: bool = True) -> tuple[Root, subprocess.CompletedProcess[str]]:
    root = Root(tmp_path)
    root.write("/etc/ssh/sshd_config", DEBIAN_SSHD_CONFIG.read_text())
    if literal_passwd:  # openEuler's passwd: --stdin reads the new password from standard input
        root.fake("passwd", 'if [ "$1" = --help ]; then echo "  --stdin  read new tokens from stdin"; exit 0; fi\n'
                            'echo "passwd $* <$(cat)>" >>/var/log/fake-calls\n')
    if not sshd_unit:  # Debian: the unit is ssh.service; `sshd` is only an alias once enabled
        root.fake("systemctl", 'echo "systemctl $*" >>/var/log/fake-calls\n'
                               '[ "$*" != "restart sshd" ] || exit 5\n')
    if not ifconfig:
        root.path("/fakes/ifconfig").unlink()
        (root.upper / "sbin").mkdir(parents=True, exist_ok=True)  # hide the host's /usr/sbin/ifconfig (a whiteout)
        os.mknod(root.upper / "sbin" / "ifconfig", 0o600 | 0o020000, os.makedev(0, 0))
    return root, root.hpcnow_user_data(PASSWORD)


def log_lines(root: Root) -> list[str]:
    return root.read(hpcnowcheck.REPLAY_LOG).splitlines()


@in_chroot
def test_replay_on_debian_uses_chpasswd_and_says_so(tmp_path: Path) -> None:
    root, done = replay(tmp_path)
    ok(done)
    lines = log_lines(root)
    assert lines[0] == ("root-password: chpasswd (exit 0); this passwd has no --stdin, HPC-NOW's "
                        "'passwd root --stdin' fails here")
    root_hash = next(line.split(":")[1] for line in root.read("/etc/shadow").splitlines() if line.startswith("root:"))
    check = root.sh(f"perl -e 'print crypt(q({PASSWORD}), q({root_hash})) eq q({root_hash}) ? q(match) : q(no)'")
    assert check.stdout == "match"
    assert "eulerpub-hpcnow: root-password: chpasswd" in done.stdout  # the console says it too
    assert PASSWORD not in done.stdout + done.stderr + "\n".join(lines)


@in_chroot
def test_replay_deletes_the_default_users_and_edits_sshd_like_hpcnow(tmp_path: Path) -> None:
    root, done = replay(tmp_path)
    ok(done)
    lines = log_lines(root)
    assert "userdel: no user ec2-user" in lines and "userdel: openeuler (exit 0)" in lines
    assert "openeuler:" not in root.read("/etc/passwd")
    text = root.read("/etc/ssh/sshd_config")
    assert text.endswith("PermitRootLogin yes\n")  # HPC-NOW's echo -e appends it
    assert "sshd-restart: systemctl restart sshd (exit 0)" in lines
    calls = root.read("/var/log/fake-calls").splitlines()
    assert calls == ["systemctl restart sshd", "systemctl start atd", "systemctl enable atd"]
    assert "ifconfig: 10.0.2.15" in lines  # HPC-NOW's `grep inet | head -n1`: the NIC, not lo
    assert lines[-1] == "done"


@in_chroot
def test_replay_on_openeuler_is_literal(tmp_path: Path) -> None:
    root, done = replay(tmp_path, literal_passwd=True)
    ok(done)
    calls = root.read("/var/log/fake-calls").splitlines()
    assert calls[0] == f"passwd root --stdin <{PASSWORD}>"
    assert log_lines(root)[0] == "root-password: passwd root --stdin (exit 0)"
    assert next(line for line in root.read("/etc/shadow").splitlines() if line.startswith("root:")).startswith(
        "root:!:")  # chpasswd never ran


@in_chroot
def test_replay_falls_back_to_the_ssh_unit_and_says_so(tmp_path: Path) -> None:
    root, done = replay(tmp_path, sshd_unit=False)
    ok(done)
    assert "systemctl restart ssh" in root.read("/var/log/fake-calls").splitlines()
    assert ("sshd-restart: systemctl restart ssh (exit 0); there is no sshd unit here, HPC-NOW's 'restart sshd' "
            "fails") in log_lines(root)


@in_chroot
def test_replay_without_net_tools_logs_it(tmp_path: Path) -> None:
    root, done = replay(tmp_path, ifconfig=False)
    ok(done)
    assert "ifconfig: not found (net-tools is not in the image)" in log_lines(root)


@pytest.mark.parametrize("password", ["", "a:b", "a\nb", "a\\b"])
def test_a_password_chpasswd_or_echo_would_mangle_is_refused(password: str) -> None:
    with pytest.raises(ValueError, match="root password"):
        hpcnowcheck.user_data_script(password)


def munge_root(tmp_path: Path, tools: tuple[str, ...] = ("munge", "unmunge", "munged", "mungekey")) -> Root:
    root = Root(tmp_path)
    for tool in tools:  # munge is not on this host: what the package installs, as stand-ins
        root.fake(tool, "exit 0\n")
    root.write("/etc/munge/munge.key", "build-time key\n")  # Debian's postinst makes one in the chroot
    root.write("/etc/systemd/system/munge.service", "[Unit]\n")  # the unit file a package installed
    root.fake("systemctl", 'echo "systemctl $*" >>/var/log/fake-calls\n'
                           'if [ "$1" = cat ]; then exit 1; fi\n')  # as in a build chroot: no systemd running
    root.write("/tmp/munge-script", MUNGE_SCRIPT.read_text())
    root.path("/tmp/munge-script").chmod(0o755)
    return root


@in_chroot
def test_munge_ships_without_a_key_or_a_daemon_at_boot(tmp_path: Path) -> None:
    root = munge_root(tmp_path)
    ok(root.sh("exec /tmp/munge-script"))
    assert not root.path("/etc/munge/munge.key").exists()
    assert root.read("/var/log/fake-calls").splitlines() == ["systemctl disable munge.service"]


@in_chroot
def test_munge_without_mungekey_stops_the_build(tmp_path: Path) -> None:
    root = munge_root(tmp_path, tools=("munge", "unmunge", "munged"))
    done = root.sh("exec /tmp/munge-script")
    assert done.returncode == 1
    assert done.stderr.strip() == "hpcnow: the munge packages installed no mungekey"


@in_chroot
def test_hpcnow_images_print_no_key_fingerprints_for_the_user_hpcnow_deletes(tmp_path: Path) -> None:
    """Both elements' cloud.cfg.d drop-ins, written in a root as DIB runs them, read in cloud-init's order
    (sorted by name, a later file's top-level key wins): the default user is still openeuler, and the
    final-stage module that would look that user up after HPC-NOW's userdel is switched off."""
    root = Root(tmp_path)
    root.write("/etc/ssh/sshd_config", DEBIAN_SSHD_CONFIG.read_text())
    ok(root.element("hpcnow"))
    root.write("/tmp/cloud-init-script", CLOUD_INIT_SCRIPT.read_text())
    root.path("/tmp/cloud-init-script").chmod(0o755)
    ok(root.sh("exec /tmp/cloud-init-script"))
    merged: dict[str, object] = {}
    for drop_in in sorted(root.path("/etc/cloud/cloud.cfg.d").glob("*.cfg")):
        merged.update(yaml.safe_load(drop_in.read_text()) or {})
    assert merged["no_ssh_fingerprints"] is True
    assert merged["system_info"]["default_user"]["name"] == "openeuler"  # type: ignore[index]
    assert "openeuler" in hpcnowcheck.DELETED_USERS


@in_chroot
def test_the_probe_reads_the_replay_it_follows(tmp_path: Path) -> None:
    """The root session's script run after the replay in the same root: its output, parsed and judged, passes
    (the guest's daemons are stand-ins: at runs the job at once, munge answers only with a key, module lists
    what hpc-toolchain's module files are called)."""
    root, done = replay(tmp_path)
    ok(done)
    root.write("/etc/passwd", root.read("/etc/passwd") + "munge:x:110:110::/nonexistent:/usr/sbin/nologin\n")
    root.write("/etc/group", root.read("/etc/group") + "munge:x:110:\n")
    root.fake("at", 'job=$(cat); [ "$1" = now ] && (sh -c "$job" &)\n')
    root.fake("mungekey", "mkdir -p /etc/munge && head -c 128 /dev/urandom >/etc/munge/munge.key\n")
    root.fake("munge", 'echo "MUNGE:AwQDAAA:"\n')
    root.fake("unmunge", 'grep -q "^MUNGE:" && [ -s /etc/munge/munge.key ] && echo "STATUS: Success (0)"\n')
    root.write("/etc/profile",
               "module() { printf '/usr/share/modules/modulefiles:\\nmpi/mpich\\nmpi/openmpi\\n' >&2; }\n")
    probe = root.sh(hpcnowcheck.PROBE)
    ok(probe)
    facts = hpcnowcheck.parse_probe(probe.stdout)
    problems, notes = hpcnowcheck.judge(facts)
    assert problems == [], probe.stdout
    assert notes == [
        "root logged in with its password through sshpass", "ifconfig gave 10.0.2.15",
        "no literal step on this guest: chpasswd (exit 0); this passwd has no --stdin, HPC-NOW's "
        "'passwd root --stdin' fails here", "an 'at now' job ran", "munge -n | unmunge: Success",
        "module avail lists mpi/openmpi, mpi/mpich"]
    assert "systemctl start munge" in root.read("/var/log/fake-calls").splitlines()
    assert root.path("/etc/munge/munge.key").stat().st_uid == 110  # chowned for the package's munged


# --- the check's decisions ---------------------------------------------------------------------------------


class FakeGuest:
    """A Guest whose key login answers recorded outputs."""

    def __init__(self, answer: subprocess.CompletedProcess[str], port: int = 2222, user: str = "eulercheck") -> None:
        self.port, self.user, self.answer, self.commands = port, user, answer, []

    def run(self, command: str, **_: object) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        return self.answer


def guest_answer(stdout: str = "", returncode: int = 0, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


@pytest.fixture
def sshpass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A stub sshpass on PATH: records argv and the password file it was given (content and mode), answers `reply`
    on stdout/stderr with its exit code."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record, reply = tmp_path / "sshpass.json", tmp_path / "reply.json"
    (bindir / "sshpass").write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        "f = sys.argv[sys.argv.index('-f') + 1]\n"
        f"json.dump({{'argv': sys.argv[1:], 'password': open(f).read(), 'mode': os.stat(f).st_mode & 0o777}}, "
        f"open({str(record)!r}, 'w'))\n"
        f"r = json.load(open({str(reply)!r}))\n"
        "sys.stdout.write(r['stdout']); sys.stderr.write(r['stderr']); sys.exit(r['code'])\n")
    (bindir / "sshpass").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(hpcnowcheck, "LOGIN_PAUSE_S", 0.0)

    def answer(stdout: str = "", code: int = 0, stderr: str = "") -> Path:
        reply.write_text(json.dumps({"stdout": stdout, "stderr": stderr, "code": code}))
        return record

    return answer


def probe_output(**override: str) -> str:
    """What the root session prints on a good guest: the Debian stand-in's replay log, at, munge, modules."""
    facts = {"uid": "0", "at-submit": "0", "at-output": "at-ran", "munge": "STATUS:          Success (0)",
             "modules": "/usr/share/modules/modulefiles: mpi/ mpi/mpich mpi/openmpi "}
    facts.update(override)
    replay_log = [
        "root-password: chpasswd (exit 0); this passwd has no --stdin, HPC-NOW's 'passwd root --stdin' fails here",
        "userdel: no user ec2-user", "userdel: openeuler (exit 0)", "sshd-restart: systemctl restart sshd (exit 0)",
        "sshd-effective: permitrootlogin yes passwordauthentication yes ", "at: in the image",
        "atd: start and enable (exit 0)", f"ifconfig: {facts.pop('ifconfig', '10.0.2.15')}", "done"]
    lines = [f"uid={facts.pop('uid')}", *(f"replay={line}" for line in replay_log)]
    return "\n".join([*lines, *(f"{k}={v}" for k, v in facts.items())]) + "\n"


def test_check_passes_and_keeps_the_password_out_of_argv(sshpass) -> None:
    record = sshpass(probe_output())
    result = hpcnowcheck.check(FakeGuest(guest_answer()), PASSWORD)
    assert result.passed, result.detail
    assert result.name == "hpcnow"
    assert "no literal step on this guest: chpasswd" in result.detail
    assert "ifconfig gave 10.0.2.15" in result.detail and "mpi/openmpi, mpi/mpich" in result.detail
    seen = json.loads(record.read_text())
    assert seen["password"] == PASSWORD + "\n" and seen["mode"] == 0o600
    assert PASSWORD not in " ".join(seen["argv"])
    assert seen["argv"][0] == "-f" and seen["argv"][2:5] == ["ssh", "-p", "2222"]
    assert "root@127.0.0.1" in seen["argv"]
    assert not Path(seen["argv"][1]).exists()  # removed after the check
    assert "PubkeyAuthentication=no" in seen["argv"]


@pytest.mark.parametrize(("override", "reason"), [
    ({"at-output": ""}, "the 'at now' job did not run within 60 s (submit exit 0, start and enable (exit 0))"),
    ({"munge": "STATUS: Invalid credential (6)"}, "munge -n | unmunge failed: STATUS: Invalid credential (6)"),
    ({"munge": "", "munge-key": "mungekey failed"}, "munge -n | unmunge failed: no STATUS line (mungekey failed)"),
    ({"modules": "/usr/share/modules/modulefiles: mpi/ mpi/openmpi"}, "module avail lacks mpi/mpich"),
    ({"ifconfig": "not found (net-tools is not in the image)"},
     "ifconfig gave no node address before any install: not found (net-tools is not in the image)"),
    ({"ifconfig": "127.0.0.1"}, "ifconfig gave no node address before any install: 127.0.0.1"),
])
def test_check_names_what_failed(sshpass, override: dict[str, str], reason: str) -> None:
    sshpass(probe_output(**override))
    result = hpcnowcheck.check(FakeGuest(guest_answer()), PASSWORD)
    assert not result.passed
    assert result.detail.startswith(reason), result.detail
    assert "\n" not in result.detail


@in_chroot
def test_hardened_image_fails_naming_the_sshd_line_that_refuses_root(sshpass, tmp_path: Path) -> None:
    """The hardened openeuler-cloud policy on Debian's sshd_config, cloud-init's drop-in, HPC-NOW's user_data run
    on it, then the real sshd's answers to the check's two questions (sshd -T; sshd -T -ddd) as the guest gives
    them: the detail names the leading line that keeps root out, and the appended line sshd ignores."""
    root = prepared(tmp_path, "debian", None)
    ok(root.hpcnow_user_data(PASSWORD))
    effective = root.sh("sshd -T -f /etc/ssh/sshd_config | grep -E '^(permitrootlogin|passwordauthentication) '")
    debug = root.sh("sshd -T -ddd -f /etc/ssh/sshd_config 2>&1 >/dev/null | grep -iE "
                    "'^debug3: .* setting (permitrootlogin|passwordauthentication) '")
    sshpass("", 5, "Permission denied, please try again.\n")
    result = hpcnowcheck.check(FakeGuest(guest_answer(ok(effective).stdout + ok(debug).stdout)), PASSWORD)
    assert not result.passed
    appended = 1 + root.read("/etc/ssh/sshd_config").splitlines().index("PermitRootLogin yes")
    assert result.detail.endswith(
        "the image's sshd policy refuses it: permitrootlogin without-password after HPC-NOW's edits: set by "
        "'PermitRootLogin prohibit-password' at /etc/ssh/sshd_config:4, which sshd reads first; it ignores the "
        f"later 'PermitRootLogin yes' at /etc/ssh/sshd_config:{appended}"), result.detail
    assert "\n" not in result.detail


def test_password_authentication_names_the_drop_in_that_keeps_it_off(sshpass) -> None:
    sshpass("", 255, "root@127.0.0.1: Permission denied (publickey).\n")
    result = hpcnowcheck.check(FakeGuest(guest_answer(
        "permitrootlogin yes\npasswordauthentication no\n"
        "debug3: /etc/ssh/sshd_config.d/10-site.conf:2 setting PasswordAuthentication  no\n"
        "debug3: /etc/ssh/sshd_config:3 setting PasswordAuthentication yes\n")), PASSWORD)
    assert result.detail.endswith(
        "passwordauthentication no after HPC-NOW's edits: set by 'PasswordAuthentication no' at "
        "/etc/ssh/sshd_config.d/10-site.conf:2, which sshd reads first; it ignores the later "
        "'PasswordAuthentication yes' at /etc/ssh/sshd_config:3"), result.detail


def test_hardened_image_fails_naming_the_sshd_policy(sshpass) -> None:
    # sshpass exits 5 when ssh asks for the password again: the answer of a PermitRootLogin prohibit-password sshd.
    # Without sshd's debug lines (an sshd that prints none) the detail says the likely cause.
    sshpass("", 5, "Permission denied, please try again.\n")
    guest = FakeGuest(guest_answer("permitrootlogin without-password\npasswordauthentication yes\n"
                                   "root-password: chpasswd (exit 0)\n"))
    result = hpcnowcheck.check(guest, PASSWORD)
    assert not result.passed
    assert result.detail == (
        "root password login through sshpass failed (password refused: Permission denied, please try again.): "
        "the image's sshd policy refuses it: permitrootlogin without-password after HPC-NOW's edits (its "
        "appended 'PermitRootLogin yes' lost to an earlier PermitRootLogin line)")
    assert "sshd -T" in guest.commands[0]


def test_password_authentication_left_off_is_named(sshpass) -> None:
    sshpass("", 255, "root@127.0.0.1: Permission denied (publickey).\n")
    result = hpcnowcheck.check(FakeGuest(guest_answer("permitrootlogin yes\npasswordauthentication no\n")), PASSWORD)
    assert not result.passed
    assert "sshd policy refuses it: passwordauthentication no" in result.detail


def test_unreadable_policy_says_the_key_login_failed_too(sshpass) -> None:
    sshpass("", 5, "Permission denied, please try again.\n")
    result = hpcnowcheck.check(FakeGuest(guest_answer("", 255, "Permission denied (publickey)."), user="openeuler"),
                               PASSWORD)
    assert not result.passed
    assert "sshd's policy could not be read over the key login as openeuler (exit 255" in result.detail
    assert "the replay deletes ec2-user and openeuler" in result.detail


def test_sshd_allowing_it_points_at_the_password(sshpass) -> None:
    sshpass("", 5, "Permission denied, please try again.\n")
    result = hpcnowcheck.check(FakeGuest(guest_answer("permitrootlogin yes\npasswordauthentication yes\n"
                                                      "root-password: chpasswd (exit 1)\n")), PASSWORD)
    assert not result.passed
    assert result.detail.endswith("although sshd allows it (permitrootlogin yes, passwordauthentication yes); "
                                  "replay: root-password: chpasswd (exit 1)")


def test_login_is_retried_while_the_replay_may_still_run(sshpass, tmp_path: Path) -> None:
    sshpass("", 5, "Permission denied, please try again.\n")
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "sshpass"
    stub.write_text(stub.read_text().replace("import json, os, sys\n",
                                             f"import json, os, sys\nopen({str(calls)!r}, 'a').write('x')\n"))
    hpcnowcheck.check(FakeGuest(guest_answer("permitrootlogin yes\npasswordauthentication yes\n")), PASSWORD)
    assert calls.read_text() == "x" * hpcnowcheck.LOGIN_ATTEMPTS
