"""proc: the one process layer. Real processes throughout: what the tool printed, how it ended, and that nothing
it started outlives an interrupt, an exception or a timeout (issue 15 item 5)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from eulerpub import proc
from eulerpub.errors import ToolError


def _gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie waiting for whoever adopted it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_for(path: Path, seconds: float = 10) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def _group_gone(pid: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_output_and_the_debug_echo(caplog):
    with caplog.at_level(logging.DEBUG, logger="eulerpub.proc"):
        assert proc.output(["sh", "-c", "echo 'a b'", "x y"]) == "a b\n"
    assert "+ sh -c 'echo '\"'\"'a b'\"'\"'' 'x y'" in caplog.text


def test_input_reaches_the_tool():
    assert proc.run(["cat"], input=b"hello").stdout == b"hello"


def test_a_failure_quotes_the_last_line_of_stderr():
    with pytest.raises(ToolError) as caught:
        proc.run(["sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 3"])
    assert caught.value.returncode == 3
    assert str(caught.value) == "`sh -c echo first >&2; echo 'the reason' >&2; exit 3` failed with exit code 3: " \
                                "the reason"


def test_whitespace_only_stderr_is_no_crash():
    with pytest.raises(ToolError) as caught:
        proc.run(["sh", "-c", "printf '  \\n\\t\\n' >&2; exit 4"])
    assert str(caught.value).endswith("failed with exit code 4")


def test_check_false_returns_the_failure():
    result = proc.run(["sh", "-c", "echo out; exit 5"], check=False)
    assert (result.returncode, result.stdout) == (5, b"out\n")


def test_a_missing_tool_points_at_doctor():
    with pytest.raises(ToolError) as caught:
        proc.run(["eulerpub-no-such-tool", "x"])
    assert caught.value.returncode == 127
    assert "eulerpub-no-such-tool not found" in str(caught.value)


def test_a_tool_killed_by_a_signal_is_named_by_it():
    with pytest.raises(ToolError) as caught:
        proc.run(["sh", "-c", "kill -KILL $$"])
    assert str(caught.value) == "sh was killed by SIGKILL"
    assert caught.value.ended == "killed by SIGKILL"  # what a caller's own sentence says (build's, for DIB)


def test_a_timeout_stops_the_whole_group_and_names_tool_and_limit(tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=0.5)
    assert time.monotonic() - started < 10
    assert caught.value.timeout == 0.5 and caught.value.ended == "stopped after 0.5 s"
    assert str(caught.value).startswith("`sh -c sleep 300 & echo $! > ") and \
        str(caught.value).endswith("did not finish within 0.5 s and was stopped")
    assert _group_gone(_wait_for(pidfile)), "the tool's child outlived the timeout"


def test_ctrl_c_stops_the_tool_and_its_children(tmp_path):
    """A real SIGINT to eulerpub while it waits: the tool runs in its own session (the terminal's Ctrl-C would not
    reach it), so proc stops its group itself."""
    pidfile = tmp_path / "pid"
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            proc.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"])
    finally:
        timer.cancel()
    assert _group_gone(_wait_for(pidfile))


def test_an_exception_in_a_spawn_block_stops_the_command(tmp_path):
    pidfile = tmp_path / "pid"
    with pytest.raises(RuntimeError), proc.spawn(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"]) as vm:
        _wait_for(pidfile)
        raise RuntimeError("boom")
    assert vm.returncode == -signal.SIGTERM
    assert _group_gone(_wait_for(pidfile))


def test_a_tool_that_ignores_sigterm_is_killed_after_the_grace_period():
    started = time.monotonic()
    with proc.spawn(["sh", "-c", "trap '' TERM; echo ready; sleep 300"], grace=0.5) as vm:
        assert vm.stdout.readline() == b"ready\n"
    assert vm.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_stream_appends_every_line_to_the_log_and_reports_each(tmp_path):
    log = tmp_path / "logs" / "tool.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")
    seen: list[str] = []
    proc.stream(["sh", "-c", "echo one; echo two >&2"], log_file=log, on_line=seen.append, shown="X=1 sh ...")
    assert log.read_text() == "earlier run\n+ X=1 sh ...\none\ntwo\n"
    assert seen == ["one\n", "two\n"]


def test_stream_failure_names_the_log(tmp_path):
    log = tmp_path / "tool.log"
    with pytest.raises(ToolError) as caught:
        proc.stream(["sh", "-c", "echo doing; exit 2"], log_file=log)
    assert str(caught.value) == f"`sh -c echo doing; exit 2` failed with exit code 2 (log: {log})"
    assert caught.value.ended == "exit code 2"


def test_start_and_stop_a_command_beside_eulerpub(tmp_path):
    pidfile = tmp_path / "pid"
    vm = proc.start(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], stdout=None, stderr=None)
    child = _wait_for(pidfile)
    assert vm.poll() is None
    proc.stop(vm, grace=5)
    assert vm.returncode == -signal.SIGTERM and _group_gone(child)
    proc.stop(vm)  # stopping an ended command changes nothing


def test_run_in_a_given_environment():
    assert proc.output(["sh", "-c", 'echo "$DISPLAY:$HOME"'], env={"DISPLAY": ":7", "PATH": "/usr/bin:/bin"}) == ":7:\n"
