"""The chroot tests' copy of what diskimage-builder puts in the target for its in-target phases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ELEMENTS = Path(__file__).resolve().parents[2] / "elements"


def install_bin(usr_upper: Path, *bin_dirs: Path) -> None:
    """What DIB's install-bin element does at the start of pre-install.d: every element's bin/ into the chroot's
    /usr/local/bin, mode 0755 (the in-target PATH has /usr/local/bin). usr_upper is the upper layer of the test
    root's /usr overlay; its local/bin is made opaque, so the host's /usr/local/bin stays out of the chroot."""
    local_bin = usr_upper / "local" / "bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    os.setxattr(local_bin, "trusted.overlay.opaque", b"y")
    for bin_dir in (ELEMENTS / "eulerpub-lib" / "bin", *bin_dirs):
        for tool in bin_dir.iterdir():
            shutil.copyfile(tool, local_bin / tool.name)
            (local_bin / tool.name).chmod(0o755)
