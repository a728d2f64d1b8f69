"""Reading YAML settings files (profiles, release.yaml) and turning validation errors into one line.

Every problem becomes a ConfigError of the form `<file>: <key path>: <what is wrong>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eulerpub.errors import ConfigError


def read_mapping(path: Path, *, missing: str = "no such file") -> dict[str, Any]:
    """The YAML mapping in `path` (an empty file is an empty mapping); `missing` says what to do if absent."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: malformed YAML ({problem})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def describe(path: Path, exc: ValidationError) -> str:
    """One line for the first validation problem: `<file>: <key path>: <what is wrong>`."""
    error = exc.errors()[0]
    location = ""
    for part in error["loc"]:
        if part == "[key]":  # pydantic's marker for a mapping's key: the key itself is already named
            continue
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "literal_error":
        message = f"expected {error['ctx']['expected']}, got {error['input']!r}"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if not location and error["type"] == "value_error":  # a whole-file check; its message names the key
        return f"{path}: {message}{more}"
    return f"{path}: {location or '(top level)'}: {message}{more}"
