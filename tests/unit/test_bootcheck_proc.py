"""The boot check's processes go through eulerpub.proc: SSH with a real `ssh` binary (a fake one on PATH where the
guest's answers matter), QEMU stood in by a real process (issue 15 item 5)."""

from __future__ import annotations

import time
from pathlib import Path

from eulerpub import bootcheck, proc
from eulerpub.bootcheck import Guest


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _fake_ssh(tmp_path, monkeypatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text("#!/bin/sh\n" + body)
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_no_ssh_login_names_the_budget_it_was_given(tmp_path, monkeypatch):
    """`eulerpub test --timeout 40` must not say "within 300 s"."""
    monkeypatch.setattr(bootcheck, "SSH_POLL_S", 0.1)
    guest = Guest(bootcheck.free_port(), tmp_path / "key", "openeuler")  # nothing listens there: refused
    vm = proc.start(["sleep", "60"], stdout=None, stderr=None)
    try:
        booted, detail = bootcheck._wait_for_ssh(vm, guest, time.monotonic() + 1.5, 1.5)
    finally:
        proc.stop(vm)
    assert not booted
    assert detail.startswith("no SSH login within 1.5 s (last: ")
    assert "refused" in detail


def test_a_vm_killed_by_a_signal_is_reported_by_its_name(tmp_path):
    vm = proc.start(["sh", "-c", "echo bye; kill -KILL $$"], stderr=None)
    vm.wait()
    booted, detail = bootcheck._wait_for_ssh(vm, Guest(1, tmp_path / "key", "u"), time.monotonic() + 30, 30)
    assert not booted and detail == "sh ended before SSH answered (killed by SIGKILL): bye"


def test_a_vm_that_exits_is_reported_with_its_exit_code(tmp_path):
    vm = proc.start(["sh", "-c", "echo could not open disk; exit 3"], stderr=None)
    vm.wait()
    booted, detail = bootcheck._wait_for_ssh(vm, Guest(1, tmp_path / "key", "u"), time.monotonic() + 30, 30)
    assert not booted and detail == "sh ended before SSH answered (exit code 3): could not open disk"


def test_ssh_transport_failures_are_retried_but_command_failures_are_not(tmp_path, monkeypatch):
    """A real `ssh` process each time: exit 255 is the transport (retried), any other code is the command's."""
    counter = tmp_path / "calls"
    _fake_ssh(tmp_path, monkeypatch, f'''echo x >> {counter}
n=$(wc -l < {counter})
case "$EULERPUB_FAKE_SSH" in
  flaky) [ "$n" -ge 3 ] && {{ cat; exit 0; }}; echo "kex_exchange_identification: reset" >&2; exit 255 ;;
  fails) echo "no such file" >&2; exit 1 ;;
  down) echo reset >&2; exit 255 ;;
esac
''')
    monkeypatch.setattr(bootcheck, "SSH_RETRY_PAUSE_S", 0)
    guest = Guest(2222, tmp_path / "key", "openeuler")

    monkeypatch.setenv("EULERPUB_FAKE_SSH", "flaky")
    result = guest.run("cat", stdin=b"through stdin")
    assert (result.returncode, result.stdout, len(counter.read_text().splitlines())) == (0, "through stdin", 3)

    counter.unlink()
    monkeypatch.setenv("EULERPUB_FAKE_SSH", "fails")
    result = guest.run("false")
    assert (result.returncode, result.stderr, len(counter.read_text().splitlines())) == (1, "no such file\n", 1)

    counter.unlink()
    monkeypatch.setenv("EULERPUB_FAKE_SSH", "down")
    assert guest.run("true", retries=2).returncode == 255 and len(counter.read_text().splitlines()) == 3


def test_a_guest_command_that_outlives_its_timeout_is_stopped_and_reported(tmp_path, monkeypatch):
    pidfile = tmp_path / "pid"
    _fake_ssh(tmp_path, monkeypatch, f"sleep 300 & echo $! > {pidfile}; wait\n")
    started = time.monotonic()
    result = Guest(2222, tmp_path / "key", "openeuler").run("hang", timeout=1, retries=0)
    assert time.monotonic() - started < 10
    assert (result.returncode, result.stderr) == (124, "timed out after 1 s")
    assert _gone_within(int(pidfile.read_text()), 5), "the timed-out command's child still runs"
