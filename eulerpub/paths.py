"""Where eulerpub finds its own data (elements, profiles) and keeps caches and builds."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from eulerpub.errors import EulerpubError, UsageError

_PACKAGE_DIR = Path(__file__).resolve().parent

DEFAULT_BUILD_DIR = Path("build")


def _data_dir(name: str) -> Path:
    """A top-level data directory: in a source checkout it sits beside the package, in a wheel inside it."""
    for candidate in (_PACKAGE_DIR.parent / name, _PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR.parent / name


def elements_dir() -> Path:
    """The diskimage-builder elements shipped with eulerpub."""
    return _data_dir("elements")


def builtin_profiles_dir() -> Path:
    """The profiles shipped with eulerpub."""
    return _data_dir("profiles")


def cache_dir() -> Path:
    """The download cache: EULERPUB_CACHE_DIR, else $XDG_CACHE_HOME/eulerpub, else ~/.cache/eulerpub.

    Made on first use (mode 0700) and checked to be a directory of this user that nobody else may write:
    root runs the shims kept there and builds from the images kept there, so a planted file would be a way in.
    """
    if explicit := os.environ.get("EULERPUB_CACHE_DIR"):
        path = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(xdg) / "eulerpub"
    return private_dir(path, what="cache directory", setting="EULERPUB_CACHE_DIR")


def private_dir(path: Path, *, what: str, setting: str) -> Path:
    """`path` as a directory only this user can write to, made (0700) if missing; one sentence if it cannot be."""
    path = path.absolute()
    advice = f"set {setting} to a directory of your own"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise UsageError(f"{what} {path} cannot be made ({exc.strerror}); {advice}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{what} {path} is a symbolic link or not a directory; {advice}")
    if info.st_uid != os.geteuid():
        raise UsageError(f"{what} {path} belongs to uid {info.st_uid}, not to this user; {advice}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(f"{what} {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                         f"run `chmod go-w {path}` or {advice}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path} is not writable (read-only file system?); {advice}")
    return path


def open_lock_file(path: Path) -> int:
    """A file descriptor to flock() for `path`, safe in a directory others can write to (/run/lock, /tmp).

    The file is created if missing but never truncated, and a symbolic link, FIFO or device planted at the
    name is refused instead of followed (root would otherwise truncate or block on whatever it points at).
    """
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, flags | os.O_RDWR, 0o644)
        except PermissionError:  # another user's lock: a read-only descriptor locks just as well
            fd = os.open(path, (flags & ~os.O_CREAT) | os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EulerpubError(f"lock file {path} is a symbolic link; not following it (remove it if it is "
                                "stale)") from None
        raise EulerpubError(f"cannot open the lock file {path} ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise EulerpubError(f"lock file {path} is not a regular file; remove it")
    return fd


def path_list_from_env(variable: str) -> list[Path]:
    """Directories from a PATH-like environment variable (colon separated, empties ignored)."""
    return [Path(p) for p in os.environ.get(variable, "").split(os.pathsep) if p]
