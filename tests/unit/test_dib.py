"""dib: the command line, the element tree hash, element lookup and the streamed run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eulerpub import dib
from eulerpub.errors import ToolError, UsageError


def test_build_command(tmp_path):
    cmd = dib.build_command(elements=["openeuler", "vm"], arch="x86_64", output_stem=tmp_path / "image",
                            image_size_gb=12, packages=["vim", "tmux"], env={"DIB_RELEASE": "24.03-LTS-SP1"})
    assert cmd.argv[:3] == ["disk-image-create", "-a", "amd64"]
    assert cmd.argv[-2:] == ["openeuler", "vm"]
    assert cmd.argv[cmd.argv.index("--image-size"):][:2] == ["--image-size", "12"]
    assert "vim,tmux" in cmd.argv and "--root-label" in cmd.argv
    assert cmd.shell().startswith("DIB_RELEASE=24.03-LTS-SP1 disk-image-create")


def make_element(root: Path, name: str, script: str = "echo hi\n") -> Path:
    element = root / name / "install.d"
    element.mkdir(parents=True)
    path = element / "10-hello"
    path.write_text(script)
    path.chmod(0o755)
    return path


def test_tree_hash_follows_content_and_mode(tmp_path):
    script = make_element(tmp_path, "hello")
    first = dib.tree_hash([tmp_path])
    assert first == dib.tree_hash([tmp_path])
    script.write_text("echo bye\n")
    second = dib.tree_hash([tmp_path])
    assert second != first
    script.chmod(0o644)
    assert dib.tree_hash([tmp_path]) != second


def test_check_elements(tmp_path):
    make_element(tmp_path, "mine")
    dib.check_elements([tmp_path], ["mine", "vm"])  # vm is one of DIB's own
    with pytest.raises(UsageError, match="nope"):
        dib.check_elements([tmp_path], ["nope"])


def fake_dib(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "fake-dib"
    exe.write_text("#!/bin/bash\n" + body)
    exe.chmod(0o755)
    return str(exe)


def test_run_streams_log_and_reports_phases(tmp_path):
    exe = fake_dib(tmp_path, "echo 'Running hooks from /tmp/x/hooks/root.d'\n"
                             "echo 'dib-run-parts Running /tmp/in_target.d/install.d/10-hello'\necho done\n")
    cmd = dib.build_command(elements=["x"], arch="x86_64", output_stem=tmp_path / "i", image_size_gb=None,
                            packages=[], env={}, executable=exe)
    phases: list[str] = []
    log = tmp_path / "build.log"
    dib.run(cmd, dict(os.environ), log, on_phase=phases.append)
    assert phases == ["root", "install: 10-hello"]
    assert "echo done" not in log.read_text() and "done\n" in log.read_text()


def test_run_failure_names_the_log(tmp_path):
    exe = fake_dib(tmp_path, "echo broken; exit 3\n")
    cmd = dib.build_command(elements=["x"], arch="x86_64", output_stem=tmp_path / "i", image_size_gb=None,
                            packages=[], env={}, executable=exe)
    with pytest.raises(ToolError) as caught:
        dib.run(cmd, dict(os.environ), tmp_path / "build.log")
    assert caught.value.returncode == 3 and str(tmp_path / "build.log") in str(caught.value)
    assert "broken\n" in (tmp_path / "build.log").read_text()
