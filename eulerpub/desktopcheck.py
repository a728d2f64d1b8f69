"""The `desktop` boot check: the GNOME remote desktop, proven with real clients.

On the booted image: the graphical target is reached and the display manager is running; xrdp listens on 3389
and the TigerVNC server on 5901. Then, from the host: FreeRDP (`xfreerdp` under `Xvfb`) logs in over RDP (QEMU
forwards 3389 to a free host port) as a user whose password the seed set, and vncdotool logs in over VNC to a
session the seed started with the image's `eulerpub-desktop-vnc` helper (elements/desktop), through an SSH
tunnel: TigerVNC listens on the guest's localhost only unless told otherwise (Debian's default), the way its
unit file recommends reaching it. Each client's frame is captured and must show a desktop: OCR
(`tesseract`) finds GNOME's "Activities" in it, and it is neither blank, an error dialog nor a login prompt.
The frames are kept (`desktop-rdp.png`, `desktop-vnc.png`) in the boot's frames directory.

Passwords are random per boot, generated here, sent to the guest only in the seed (the RDP one as a SHA-512
crypt hash) and to the clients on stdin; they are never logged or written to the report.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eulerpub import proc
from eulerpub.bootcheck import CheckResult, Guest, free_port
from eulerpub.errors import ToolError

RDP_PORT = 3389
VNC_DISPLAY = ":1"
VNC_PORT = 5901
GUEST_PORTS = (RDP_PORT,)  # forwarded by QEMU to free host ports (VNC goes through an SSH tunnel)
RDP_USER = "eulerrdp"  # one user per protocol: GNOME runs one session per user
VNC_USER = "eulervnc"
FRAME_SIZE = (1280, 800)
SESSION_WAIT_S = 600  # GNOME's first session under TCG with llvmpipe: 1-4 minutes here, over 7 on a host at load 4
FRAME_POLL_S = 15
LISTEN_WAIT_S = 120  # the VNC server starts from cloud-init's runcmd, late in first boot
HOST_TOOLS = {"Xvfb": "xvfb", "xfreerdp": "freerdp2-x11", "import": "imagemagick", "tesseract": "tesseract-ocr"}

# What a frame's OCR text says, checked in this order (an error dialog over a desktop is still an error).
ERROR_WORDS = ("something has gone wrong", "authentication required", "authentication is required",
               "connection problem", "login failed", "error")
LOGIN_WORDS = ("password", "username", "not listed", "login to", "sign in")
DESKTOP_WORDS = ("activities",)
MIN_COLOURS = 8  # fewer distinct colours than this is a blank (or single-colour) screen


@dataclass(frozen=True)
class DesktopSeed:
    """The per-boot secrets of the desktop check and what the seed must carry for them."""

    rdp_password: str
    vnc_password: str

    @classmethod
    def generate(cls) -> DesktopSeed:
        # VNC authentication uses at most 8 characters of a password.
        return cls(rdp_password=secrets.token_urlsafe(18), vnc_password=secrets.token_hex(4))

    def cloud_config(self, rdp_hash: str) -> dict[str, object]:
        """Cloud-config keys: the two users (RDP with its password hash) and the VNC server for the other."""
        return {
            "users": [
                {"name": RDP_USER, "shell": "/bin/bash", "lock_passwd": False, "passwd": rdp_hash},
                {"name": VNC_USER, "shell": "/bin/bash"},
            ],
            "runcmd": [["sh", "-c", f"echo '{self.vnc_password}' | eulerpub-desktop-vnc {VNC_USER} {VNC_DISPLAY}"]],
            # Under TCG gnome-shell takes minutes to start: systemd's default start timeout for the user unit
            # kills it and starts it again, for ever. The first real boot showed exactly that.
            "write_files": [{"path": "/etc/systemd/user/org.gnome.Shell@x11.service.d/50-eulerpub-slow-vm.conf",
                             "content": "[Service]\nTimeoutStartSec=900\n"}],
        }


def password_hash(password: str) -> str:
    """SHA-512 crypt of `password` (what /etc/shadow holds), computed on the host by openssl."""
    return proc.output(["openssl", "passwd", "-6", "-stdin"], input=password.encode()).strip()


@dataclass(frozen=True)
class FrameVerdict:
    shows_desktop: bool
    reason: str


def classify_frame(text: str, colours: int) -> FrameVerdict:
    """Whether a captured frame shows a desktop, from its OCR text and its number of distinct colours."""
    if colours < MIN_COLOURS:
        return FrameVerdict(False, f"the frame is blank ({colours} colour{'s' if colours != 1 else ''})")
    words = " ".join(text.lower().split())
    for kind, markers in (("an error", ERROR_WORDS), ("a login prompt", LOGIN_WORDS)):
        found = next((word for word in markers if word in words), None)
        if found:
            return FrameVerdict(False, f"the frame shows {kind} ({found!r})")
    if not any(word in words for word in DESKTOP_WORDS):
        return FrameVerdict(False, f"no GNOME desktop in the frame (OCR: {words[:60] or 'no text'!r})")
    return FrameVerdict(True, "GNOME's 'Activities' is on screen")


def read_frame(path: Path) -> FrameVerdict:
    """OCR a PNG frame and classify it. GNOME draws light text on a dark top bar, which tesseract reads poorly:
    it reads the frame as is and as an inverted, doubled greyscale copy."""
    from PIL import Image, ImageOps  # vncdotool's dependency, as the VNC client is

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=MIN_COLOURS * 4)
    distinct = len(colours) if colours is not None else MIN_COLOURS * 4
    inverted = path.with_name(f"{path.stem}.ocr.png")
    grey = ImageOps.invert(ImageOps.autocontrast(rgb.convert("L")))
    grey.resize((grey.width * 2, grey.height * 2), Image.Resampling.LANCZOS).save(inverted)
    texts = []
    try:
        for source in (path, inverted):
            try:
                done = proc.run(["tesseract", str(source), "stdout"], check=False, timeout=120)
            except ToolError as exc:
                if exc.timeout is None:
                    raise
                continue
            texts.append(done.stdout.decode(errors="replace"))
    finally:
        inverted.unlink(missing_ok=True)
    return classify_frame("\n".join(texts), distinct)


def missing_host_tools() -> list[str]:
    missing = [f"{tool} ({pkg})" for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None]
    try:
        import vncdotool  # noqa: F401
    except ImportError:
        missing.append("vncdotool (pip install 'eulerpub[desktop]')")
    return missing


def check(guest: Guest, seed: DesktopSeed, forwards: dict[int, int], frames_dir: Path) -> CheckResult:
    """The desktop check (see the module docstring); its one-line reason names the first thing that failed."""
    missing = missing_host_tools()
    if missing:
        return CheckResult("desktop", False, f"the host lacks {', '.join(missing)} (scripts/install-host-deps.sh)")
    state = guest.run("echo default=$(systemctl get-default); echo graphical=$(systemctl is-active graphical.target);"
                      " for u in gdm gdm3 display-manager; do echo $u=$(systemctl is-active $u); done", timeout=60)
    units = dict(line.split("=", 1) for line in state.stdout.splitlines() if "=" in line)
    if units.get("default") != "graphical.target" or units.get("graphical") != "active":
        return CheckResult("desktop", False, f"the graphical target is not reached (default "
                           f"{units.get('default') or '?'}, graphical.target {units.get('graphical') or '?'})")
    if "active" not in (units.get("gdm"), units.get("gdm3"), units.get("display-manager")):
        return CheckResult("desktop", False, f"gdm is not running (gdm: {units.get('gdm') or '?'}, "
                           f"display-manager: {units.get('display-manager') or '?'})")
    for port, what in ((RDP_PORT, "xrdp"), (VNC_PORT, "the VNC server")):
        if not _listens(guest, port):
            return CheckResult("desktop", False, f"{what} does not listen on port {port}")
    frames_dir.mkdir(parents=True, exist_ok=True)
    passed: list[str] = []
    for name, grab in (("rdp", _rdp_frame), ("vnc", _vnc_frame)):
        verdict = grab(guest, forwards, seed, frames_dir / f"desktop-{name}.png", time.monotonic() + SESSION_WAIT_S)
        if not verdict.shows_desktop:
            return CheckResult("desktop", False, f"{name.upper()} login as {_user(name)}: {verdict.reason}"
                               + (f" (passed: {', '.join(passed)})" if passed else ""))
        passed.append(f"{name.upper()} as {_user(name)}")
    return CheckResult("desktop", True, f"graphical target reached, gdm running, xrdp on {RDP_PORT} and VNC on "
                       f"{VNC_PORT}; GNOME desktop over {' and '.join(passed)} (VNC through an SSH tunnel; "
                       f"frames in {frames_dir})")


def _user(name: str) -> str:
    return RDP_USER if name == "rdp" else VNC_USER


def _listens(guest: Guest, port: int) -> bool:
    deadline = time.monotonic() + LISTEN_WAIT_S
    while True:
        result = guest.run(f"ss -Htln 'sport = :{port}'", timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(5)


def _rdp_frame(_guest: Guest, forwards: dict[int, int], seed: DesktopSeed, frame: Path,
               deadline: float) -> FrameVerdict:
    """xfreerdp in a fresh Xvfb, the password on stdin; frames of the Xvfb root window until a desktop shows."""
    width, height = FRAME_SIZE
    xvfb = proc.start(["Xvfb", "-displayfd", "1", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                      stderr=subprocess.DEVNULL)
    client: subprocess.Popen[bytes] | None = None
    try:
        display = f":{xvfb.stdout.readline().decode().strip()}" if xvfb.stdout else ""
        env = {**os.environ, "DISPLAY": display}
        argv = ["xfreerdp", f"/v:127.0.0.1:{forwards[RDP_PORT]}", f"/u:{RDP_USER}", "/from-stdin:force",
                "/cert:ignore", f"/size:{width}x{height}", "/bpp:24", "-grab-keyboard", "/log-level:ERROR"]
        # No controlling terminal (proc starts a new session), so FreeRDP reads the password from stdin, not /dev/tty;
        # ":force" makes it ask (without it FreeRDP 2 asks only under NLA, which xrdp does not offer).
        client = proc.start(argv, env=env, stdin=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert client.stdin is not None
        client.stdin.write(f"{seed.rdp_password}\n".encode())
        client.stdin.close()

        def grab() -> FrameVerdict:
            if client.poll() is not None:
                out = (client.stdout.read() if client.stdout else b"").decode(errors="replace")
                lines = [line for line in out.splitlines() if line.strip()]
                raise _ClientEnded(FrameVerdict(False, f"xfreerdp exited with code {client.returncode}"
                                                + (f": {lines[-1][-200:]}" if lines else "")))
            if not _run_ok(["import", "-display", display, "-window", "root", str(frame)], env=env):
                return FrameVerdict(False, "no frame captured (ImageMagick's import could not read the display)")
            return read_frame(frame)

        return poll_frames(deadline, grab)
    finally:
        for process in (client, xvfb):
            _stop(process)


# Run in a child interpreter: vncdotool's Twisted reactor cannot be restarted in one process, and the child's
# timeout bounds a stuck connection. argv: host::port, the frame's path; the password on stdin.
VNC_GRAB = """
import sys
from vncdotool import api
client = api.connect(sys.argv[1], password=sys.stdin.readline().rstrip("\\n"), timeout=60)
try:
    client.refreshScreen()
    client.captureScreen(sys.argv[2])
finally:
    client.disconnect()
    api.shutdown()
"""


def _vnc_frame(guest: Guest, _forwards: dict[int, int], seed: DesktopSeed, frame: Path,
               deadline: float) -> FrameVerdict:
    """vncdotool logs in with the VNC password through an SSH tunnel and captures the session; again until a
    desktop shows."""
    local = free_port()
    tunnel = proc.start([*guest.ssh_argv("true")[:-2], "-N", "-o", "ExitOnForwardFailure=yes",
                         "-L", f"127.0.0.1:{local}:127.0.0.1:{VNC_PORT}", f"{guest.user}@127.0.0.1"],
                        stdout=subprocess.DEVNULL)

    def grab() -> FrameVerdict:
        if tunnel.poll() is not None:
            said = (tunnel.stderr.read() if tunnel.stderr else b"").decode(errors="replace").strip()
            raise _ClientEnded(FrameVerdict(False, f"the SSH tunnel to VNC port {VNC_PORT} closed: {said[-200:]}"))
        frame.unlink(missing_ok=True)
        try:
            grabbed = proc.run([sys.executable, "-c", VNC_GRAB, f"127.0.0.1::{local}", str(frame)],
                               input=f"{seed.vnc_password}\n".encode(), check=False, timeout=120)
        except ToolError as exc:
            if exc.timeout is None:
                raise
            return FrameVerdict(False, "vncdotool got no frame within 120 s")
        if grabbed.returncode != 0 or not frame.is_file():
            text = (grabbed.stderr or b"").decode(errors="replace").strip().splitlines()
            return FrameVerdict(False, f"vncdotool failed: {text[-1][-200:] if text else grabbed.returncode}")
        return read_frame(frame)

    try:
        return poll_frames(deadline, grab)
    finally:
        _stop(tunnel)


class _ClientEnded(Exception):
    """The client (or its tunnel) is gone: no later frame can come, so the wait ends with this verdict."""

    def __init__(self, verdict: FrameVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def poll_frames(deadline: float, grab: Callable[[], FrameVerdict]) -> FrameVerdict:
    """Grabs a frame every FRAME_POLL_S until one shows a desktop or `deadline` (monotonic) passes, and returns the
    last verdict; a grab that raises _ClientEnded ends the wait at once. One loop for the RDP and the VNC client."""
    verdict = FrameVerdict(False, "no frame captured")
    while time.monotonic() < deadline:
        time.sleep(FRAME_POLL_S)
        try:
            verdict = grab()
        except _ClientEnded as ended:
            return ended.verdict
        if verdict.shows_desktop:
            return verdict
    return verdict


def _run_ok(argv: list[str], **kwargs) -> bool:
    try:
        return proc.run(argv, check=False, timeout=60, **kwargs).returncode == 0
    except ToolError as exc:
        if exc.timeout is None:
            raise
        return False


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        proc.stop(process, grace=10)

