"""desktopcheck: what a captured frame shows (OCR text + colours), on synthetic frames read by the real tesseract,
and the seed it asks for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eulerpub import desktopcheck
from eulerpub.desktopcheck import classify_frame


def test_classify_frame():
    assert classify_frame("Activities   Dec 1 23:20", 300).shows_desktop
    blank = classify_frame("", 1)
    assert not blank.shows_desktop and blank.reason == "the frame is blank (1 colour)"
    login = classify_frame("Login to eulerpub-test\nUsername\nPassword", 200)
    assert not login.shows_desktop and "login prompt" in login.reason
    oh_no = classify_frame("Activities\nOh no! Something has gone wrong.", 200)
    assert not oh_no.shows_desktop and "error" in oh_no.reason
    dialog = classify_frame("Activities  Authentication Required  Cancel", 200)
    assert not dialog.shows_desktop and "authentication required" in dialog.reason
    greeter = classify_frame("Not listed?", 200)
    assert not greeter.shows_desktop and "login prompt" in greeter.reason
    other = classify_frame("xrdp  connecting to sesman", 200)
    assert not other.shows_desktop and other.reason.startswith("no GNOME desktop in the frame (OCR: 'xrdp")


def _frame(path: Path, lines: list[str], background: str = "#2c001e") -> Path:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", desktopcheck.FRAME_SIZE, background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, desktopcheck.FRAME_SIZE[0], 32), fill="black")
    font = ImageFont.load_default(size=15) if hasattr(ImageFont, "load_default") else None
    for row, text in enumerate(lines):
        draw.text((20, 4 + row * 60), text, fill="white", font=font)
    draw.ellipse((600, 300, 700, 400), fill="#3584e4")
    image.save(path)
    return path


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_read_frame_ocrs_real_pngs(tmp_path):
    pytest.importorskip("PIL")
    assert desktopcheck.read_frame(_frame(tmp_path / "desk.png", ["Activities"])).shows_desktop
    prompt = desktopcheck.read_frame(_frame(tmp_path / "login.png", ["Username", "Password"]))
    assert not prompt.shows_desktop and "login prompt" in prompt.reason
    from PIL import Image

    Image.new("RGB", desktopcheck.FRAME_SIZE, "black").save(tmp_path / "black.png")
    assert desktopcheck.read_frame(tmp_path / "black.png").reason == "the frame is blank (1 colour)"


def test_the_seed_carries_no_plain_rdp_password():
    seed = desktopcheck.DesktopSeed.generate()
    assert seed != desktopcheck.DesktopSeed.generate()  # random per boot
    assert len(seed.vnc_password) == 8  # VNC authentication reads 8 characters
    hashed = desktopcheck.password_hash(seed.rdp_password)
    assert hashed.startswith("$6$")
    config = seed.cloud_config(hashed)
    rdp, vnc = config["users"]
    assert (rdp["name"], rdp["passwd"], rdp["lock_passwd"]) == (desktopcheck.RDP_USER, hashed, False)
    assert vnc["name"] == desktopcheck.VNC_USER
    assert seed.rdp_password not in str(config)
    assert f"eulerpub-desktop-vnc {desktopcheck.VNC_USER} :1" in config["runcmd"][0][2]
    (drop_in,) = config["write_files"]  # gnome-shell's start outlasts systemd's default timeout under TCG
    assert drop_in["path"].startswith("/etc/systemd/user/org.gnome.Shell@x11.service.d/")
    assert "TimeoutStartSec=" in drop_in["content"]


class _Guest:
    """Canned answers to the check's guest commands (the state of the units, then the listening sockets)."""

    def __init__(self, state: str, listening: set[int]) -> None:
        self.state, self.listening, self.user, self.port = state, listening, "eulercheck", 2222

    def run(self, command, *, timeout=0, stdin=None):
        import subprocess

        if "get-default" in command:
            return subprocess.CompletedProcess(command, 0, self.state, "")
        port = int(command.split(":")[-1].rstrip("'"))
        out = f"LISTEN 0 5 *:{port}\n" if port in self.listening else ""
        return subprocess.CompletedProcess(command, 0, out, "")


UP = "default=graphical.target\ngraphical=active\ngdm=active\ngdm3=active\ndisplay-manager=active\n"


def test_check_names_the_first_thing_that_is_down(tmp_path, monkeypatch):
    monkeypatch.setattr(desktopcheck, "missing_host_tools", lambda: [])
    monkeypatch.setattr(desktopcheck, "LISTEN_WAIT_S", 0)
    seed = desktopcheck.DesktopSeed("x", "y")
    gdm_stopped = UP.replace("gdm=active\ngdm3=active\ndisplay-manager=active",
                             "gdm=inactive\ngdm3=inactive\ndisplay-manager=inactive")
    result = desktopcheck.check(_Guest(gdm_stopped, {3389, 5901}), seed, {3389: 1}, tmp_path)
    assert not result.passed and result.detail == "gdm is not running (gdm: inactive, display-manager: inactive)"
    text_mode = UP.replace("default=graphical.target", "default=multi-user.target")
    result = desktopcheck.check(_Guest(text_mode, {3389, 5901}), seed, {3389: 1}, tmp_path)
    assert result.detail.startswith("the graphical target is not reached (default multi-user.target")
    result = desktopcheck.check(_Guest(UP, {3389}), seed, {3389: 1}, tmp_path)
    assert result.detail == "the VNC server does not listen on port 5901"


def test_poll_frames_waits_for_a_desktop_and_stops_when_the_client_ends(monkeypatch):
    monkeypatch.setattr(desktopcheck, "FRAME_POLL_S", 0)
    login = desktopcheck.FrameVerdict(False, "the frame shows a login prompt ('password')")
    desktop = desktopcheck.FrameVerdict(True, "GNOME's 'Activities' is on screen")
    frames = iter([login, login, desktop, login])
    calls = []

    def grab():
        calls.append(1)
        return next(frames)

    far = desktopcheck.time.monotonic() + 60
    assert desktopcheck.poll_frames(far, grab) == desktop and len(calls) == 3

    def ended():
        raise desktopcheck._ClientEnded(desktopcheck.FrameVerdict(False, "xfreerdp exited with code 131"))

    assert desktopcheck.poll_frames(far, ended).reason == "xfreerdp exited with code 131"
    # Past the deadline: the last verdict, not a desktop; before any grab: "no frame captured".
    assert desktopcheck.poll_frames(desktopcheck.time.monotonic() - 1, grab).reason == "no frame captured"
    soon = desktopcheck.time.monotonic() + 0.05
    assert desktopcheck.poll_frames(soon, lambda: login) == login
