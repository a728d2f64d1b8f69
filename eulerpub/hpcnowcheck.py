"""Boot check ``hpcnow``: replay HPC-NOW's first-boot user_data in the guest, then prove from the host what its
cluster bootstrap needs from the image.

HPC-NOW (github.com/zhenrong-wang/hpc-now) starts every master and compute node with a ``#!/bin/bash`` user_data
(``infra-as-code/{aws,qcloud,hwcloud}/hpc_stack_*.master|compute*``). `user_data_script` writes one that does the
same steps, in the same order: root's password, the users ``ec2-user`` and ``openeuler`` deleted, sshd edited the
way HPC-NOW edits it (its AWS templates) and restarted, atd started and enabled, the node's address read with
``ifconfig``. On openEuler each step is HPC-NOW's own command; where the guest lacks one (Debian's ``passwd`` has
no ``--stdin``; Debian names the sshd unit ``ssh``) the nearest equivalent runs, decided in the guest, and the
replay's log (and so this check's output) says so.

`check` then logs in from the host as root with that password through ``sshpass`` (what ``hpcmgr connect`` does
to reach compute nodes), and as root: an ``at now`` job runs, ``munge -n | unmunge`` succeeds, ``module avail``
lists both MPIs (munge brought up as HPC-NOW's bootstrap does: the image ships neither a key nor a running
munged; the check makes the key with ``mungekey`` and starts the package's unit). When the password login
fails it reads ``sshd -T`` in the guest over the key login, to say whether the image's sshd policy refused it,
and ``sshd -T -ddd`` for the file and line that set the refusing value (sshd keeps the first it reads).

The replay deletes ``openeuler`` and ``ec2-user``: the key login the diagnosis uses must belong to another user.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from eulerpub import proc
from eulerpub.errors import ToolError

if TYPE_CHECKING:  # bootcheck imports this module
    from eulerpub.bootcheck import CheckResult, Guest

NAME = "hpcnow"
REPLAY_LOG = "/var/log/eulerpub-hpcnow.log"
DELETED_USERS = ("ec2-user", "openeuler")
MPI_MODULES = ("mpi/openmpi", "mpi/mpich")  # what elements/hpc-toolchain installs
# HPC-NOW's sshd edits, command for command as its AWS master and compute user_data run them
# (infra-as-code/aws/hpc_stack_aws.master, hpc_stack_aws.compute.v2).
SSHD_EDITS = (
    "sed -i 's/PasswordAuthentication no/PasswordAuthentication yes/g' /etc/ssh/sshd_config",
    "sed -i 's/PasswordAuthentication no/PasswordAuthentication yes/g' /etc/ssh/sshd_config.d/*",
    "sed -i '/PermitRootLogin no/d' /etc/ssh/sshd_config",
    'echo -e "PermitRootLogin yes" >> /etc/ssh/sshd_config',
)
LOGIN_ATTEMPTS = 6  # the replay runs in cloud-init's final stage: root's password may not be set yet
LOGIN_PAUSE_S = 10.0
LOGIN_TIMEOUT_S = 240.0  # one root session: the at job and the module listing under TCG
AT_WAIT_S = 60  # atd runs `at now` jobs within seconds; TCG is slow
# sshpass's own exit codes (its man page); 5: ssh asked for the password again, i.e. the server refused it
SSHPASS_REASONS = {5: "password refused", 6: "host key unknown", 3: "ssh did not start"}


def user_data_script(root_password: str) -> str:
    """The NoCloud user_data: HPC-NOW's first-boot steps, literal on openEuler, nearest equivalents elsewhere."""
    if not root_password or any(c in root_password for c in ":\n\r\0\\"):
        raise ValueError("the root password must be non-empty and hold no ':', backslash, NUL or line break "
                         "(chpasswd and echo read it)")
    pw = shlex.quote(root_password)
    pw_line = shlex.quote(f"root:{root_password}")
    users = " ".join(DELETED_USERS)
    edits = "\n".join(SSHD_EDITS)
    return f"""#!/bin/bash
# eulerpub boot check "hpcnow": the first-boot steps of HPC-NOW's master and compute user_data, replayed.
# Each step logs one line to {REPLAY_LOG} (read by the check) and to the console.
log() {{ echo "$*" >>{REPLAY_LOG}; echo "eulerpub-hpcnow: $*"; }}
: >{REPLAY_LOG}
chmod 0600 {REPLAY_LOG}

# root's password, as HPC-NOW sets it: passwd --stdin (openEuler's passwd has it, Debian's does not)
if passwd --help 2>&1 | grep -q -- '--stdin'; then
    echo {pw} | passwd root --stdin >> /dev/null 2>&1
    log "root-password: passwd root --stdin (exit $?)"
else
    echo {pw_line} | chpasswd
    log "root-password: chpasswd (exit $?); this passwd has no --stdin, HPC-NOW's 'passwd root --stdin' fails here"
fi

# the default users of AWS and openEuler images
for u in {users}; do
    if id "$u" >> /dev/null 2>&1; then
        userdel -f "$u"
        log "userdel: $u (exit $?)"
    else
        log "userdel: no user $u"
    fi
done

# sshd, edited as HPC-NOW's AWS templates edit it
{edits}
if systemctl restart sshd; then
    log "sshd-restart: systemctl restart sshd (exit 0)"
else
    systemctl restart ssh
    log "sshd-restart: systemctl restart ssh (exit $?); there is no sshd unit here, HPC-NOW's 'restart sshd' fails"
fi
log "sshd-effective: $(sshd -T 2>/dev/null | grep -E '^(permitrootlogin|passwordauthentication) ' | tr '\\n' ' ')"

# atd: HPC-NOW installs at, then starts and enables atd (hpcopr later queues jobs with 'at now')
if command -v at >> /dev/null 2>&1; then log "at: in the image"; else log "at: missing (HPC-NOW installs it)"; fi
systemctl start atd && systemctl enable atd
log "atd: start and enable (exit $?)"

# the node's address, read with ifconfig before HPC-NOW installs net-tools
if command -v ifconfig >> /dev/null 2>&1; then
    master_private_ip=$(ifconfig | grep inet | head -n1 | awk '{{print $2}}')
    log "ifconfig: ${{master_private_ip:-no address}}"
else
    log "ifconfig: not found (net-tools is not in the image)"
fi
log "done"
"""


# What the check runs as root after the password login: one line per fact, "key=value".
PROBE = f"""
echo "uid=$(id -u)"
for i in $(seq 1 60); do grep -qx done {REPLAY_LOG} 2>/dev/null && break; sleep 2; done
sed 's/^/replay=/' {REPLAY_LOG} 2>/dev/null
rm -f /tmp/eulerpub-at.out
echo 'echo at-ran > /tmp/eulerpub-at.out' | at now > /dev/null 2>&1
echo "at-submit=$?"
for i in $(seq 1 {AT_WAIT_S // 2}); do [ -s /tmp/eulerpub-at.out ] && break; sleep 2; done
echo "at-output=$(cat /tmp/eulerpub-at.out 2>/dev/null)"
# munge the way HPC-NOW's bootstrap brings it up: the image has no key and no munged running; its master makes the
# key with mungekey, then munged starts (HPC-NOW runs it as its slurm user; here the package's unit, as munge)
[ -s /etc/munge/munge.key ] || mungekey > /dev/null 2>&1 || echo "munge-key=mungekey failed"
chown munge:munge /etc/munge/munge.key 2>/dev/null
systemctl start munge > /dev/null 2>&1 || echo "munge-start=systemctl start munge failed"
echo "munge=$(munge -n 2>&1 | unmunge 2>&1 | grep -m1 '^STATUS:')"
echo "modules=$(bash -lc 'module -t avail' 2>&1 | tr '\\n' ' ')"
"""


def check(guest: Guest, root_password: str) -> CheckResult:
    from eulerpub.bootcheck import CheckResult

    login = _root_login(guest, root_password)
    facts = parse_probe(login.stdout) if login.returncode == 0 else {}
    if facts.get("uid") != ["0"]:
        return CheckResult(NAME, False, _login_failure(guest, login))
    problems, notes = judge(facts)
    if problems:
        return CheckResult(NAME, False, "; ".join(problems))
    return CheckResult(NAME, True, "; ".join(notes))


def judge(facts: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """What the root session showed: (problems, notes). No problems means the check passed."""
    problems: list[str] = []
    notes = ["root logged in with its password through sshpass"]
    replay = dict(line.split(": ", 1) for line in facts.get("replay", []) if ": " in line)
    if "done" not in facts.get("replay", []):
        problems.append("the user_data replay did not finish (no 'done' in its log)")
    ip = replay.get("ifconfig", "no log line")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip) and not ip.startswith("127."):
        notes.append(f"ifconfig gave {ip}")
    else:
        problems.append(f"ifconfig gave no node address before any install: {ip}")
    for step in ("root-password", "sshd-restart"):
        if "fails here" in replay.get(step, ""):
            notes.append(f"no literal step on this guest: {replay[step]}")
    at_output = facts.get("at-output", [""])[0]
    if at_output == "at-ran":
        notes.append("an 'at now' job ran")
    else:
        problems.append(f"the 'at now' job did not run within {AT_WAIT_S} s (submit exit "
                        f"{facts.get('at-submit', ['?'])[0]}, {replay.get('atd', 'atd not started')})")
    munge = facts.get("munge", [""])[0]
    if " ".join(munge.split()).startswith("STATUS: Success"):  # unmunge pads it: "STATUS:          Success (0)"
        notes.append("munge -n | unmunge: Success")
    else:
        before = [facts[k][0] for k in ("munge-key", "munge-start") if k in facts]
        problems.append(f"munge -n | unmunge failed: {munge or 'no STATUS line'}"
                        + (f" ({'; '.join(before)})" if before else ""))
    listed = set(facts.get("modules", [""])[0].split())
    missing = [m for m in MPI_MODULES if m not in listed]
    if missing:
        problems.append(f"module avail lacks {', '.join(missing)}: {' '.join(sorted(listed))[:200] or 'nothing'}")
    else:
        notes.append(f"module avail lists {', '.join(MPI_MODULES)}")
    return problems, notes


def parse_probe(stdout: str) -> dict[str, list[str]]:
    """The root session's `key=value` lines; a key may repeat (the replay's log lines)."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key, []).append(value.strip())
    return out


def root_ssh_argv(guest: Guest, command: str, password_file: Path) -> list[str]:
    """ssh as root with a password only (no key), through sshpass reading it from a 0600 file, never from argv."""
    return ["sshpass", "-f", str(password_file), "ssh", "-p", str(guest.port), "-o", "PubkeyAuthentication=no",
            "-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
            "root@127.0.0.1", command]


def _root_login(guest: Guest, root_password: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.CompletedProcess[str]([], 127, "", "not tried")
    with tempfile.TemporaryDirectory(prefix="eulerpub-hpcnow-") as private:  # 0700
        password_file = Path(private) / "root-password"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as sink:
            sink.write(root_password + "\n")
        for attempt in range(LOGIN_ATTEMPTS):
            try:
                done = proc.run(root_ssh_argv(guest, PROBE, password_file), check=False, timeout=LOGIN_TIMEOUT_S)
                result = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                                     done.stderr.decode(errors="replace"))
            except ToolError as exc:
                result = subprocess.CompletedProcess([], 127, "", str(exc))
            if result.returncode == 0 or attempt == LOGIN_ATTEMPTS - 1:
                break
            time.sleep(LOGIN_PAUSE_S)
    return result


def _login_failure(guest: Guest, login: subprocess.CompletedProcess[str]) -> str:
    """One line: why root could not log in with its password, naming the sshd policy when that is the cause."""
    reason = SSHPASS_REASONS.get(login.returncode, f"exit {login.returncode}")
    stderr = login.stderr.strip().splitlines()
    said = f"{reason}: {stderr[-1][:160]}" if stderr else reason
    head = f"root password login through sshpass failed ({said})"
    if login.returncode == 0:
        head = f"root password login gave no root shell (uid {parse_probe(login.stdout).get('uid', ['?'])[0]})"
    policy = guest.run("sudo -n /usr/sbin/sshd -T 2>&1 | grep -E '^(permitrootlogin|passwordauthentication) '; "
                       # -ddd: sshd names the file and line of every setting it reads (the first one counts)
                       "sudo -n /usr/sbin/sshd -T -ddd 2>&1 >/dev/null | grep -iE "
                       "'^debug3: .* setting (permitrootlogin|passwordauthentication) '; "
                       f"sudo -n grep -E '^(root-password|sshd-restart):' {REPLAY_LOG} 2>&1", timeout=60)
    lines = policy.stdout.splitlines()
    values = dict(line.split(None, 1) for line in lines
                  if line.startswith(("permitrootlogin ", "passwordauthentication ")))
    replay = [line for line in lines if line.startswith(("root-password:", "sshd-restart:"))]
    if not values:
        said = " ".join((policy.stderr or policy.stdout).split())[-160:]
        return (f"{head}, and sshd's policy could not be read over the key login as {guest.user} (exit "
                f"{policy.returncode}: {said}); the replay deletes {' and '.join(DELETED_USERS)}")
    read = sshd_settings(lines)
    root, password = values.get("permitrootlogin", "?"), values.get("passwordauthentication", "?")
    if root != "yes":
        return (f"{head}: the image's sshd policy refuses it: permitrootlogin {root} after HPC-NOW's edits"
                + _winner(read.get("permitrootlogin", []), "yes", "its appended 'PermitRootLogin yes' lost to "
                          "an earlier PermitRootLogin line"))
    if password != "yes":
        return (f"{head}: the image's sshd policy refuses it: passwordauthentication {password} after HPC-NOW's "
                "edits" + _winner(read.get("passwordauthentication", []), "yes", "its sed found no "
                                  "'PasswordAuthentication no' line to turn on where sshd reads first"))
    return (f"{head}, although sshd allows it (permitrootlogin yes, passwordauthentication yes); replay: "
            f"{'; '.join(replay) or 'no log'}")


def sshd_settings(lines: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """`sshd -T -ddd`'s "debug3: FILE:LINE setting Keyword value" lines: per keyword (lower case), every
    (FILE:LINE, keyword as written, value) in the order sshd read them."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for line in lines:
        match = re.match(r"debug3: (\S+:\d+) setting (\S+) (.*)$", line.strip())
        if match:
            where, keyword, value = match.groups()
            out.setdefault(keyword.lower(), []).append((where, keyword, value.strip()))
    return out


def _winner(read: list[tuple[str, str, str]], wanted: str, otherwise: str) -> str:
    """Which line of sshd's configuration set the value (sshd keeps the first), and the later ones it ignored
    that HPC-NOW needed; without sshd's debug lines, `otherwise` (the likely cause)."""
    if not read:
        return f" ({otherwise})"
    where, keyword, value = read[0]
    ignored = [f"{k} {v}' at {w}" for w, k, v in read[1:] if v.lower() == wanted]
    said = f": set by '{keyword} {value}' at {where}, which sshd reads first"
    return said + (f"; it ignores the later '{ignored[0]}" if ignored else "")
