"""Where eulerpub finds its own data (elements, profiles) and keeps caches and builds."""

from __future__ import annotations

import os
from pathlib import Path

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
    """The download cache: EULERPUB_CACHE_DIR, else $XDG_CACHE_HOME/eulerpub, else ~/.cache/eulerpub."""
    if explicit := os.environ.get("EULERPUB_CACHE_DIR"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "eulerpub"


def path_list_from_env(variable: str) -> list[Path]:
    """Directories from a PATH-like environment variable (colon separated, empties ignored)."""
    return [Path(p) for p in os.environ.get(variable, "").split(os.pathsep) if p]
