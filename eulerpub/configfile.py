"""Reading YAML settings files (profiles, release.yaml) and turning validation errors into one line.

Every problem becomes a ConfigError of the form `<file>: <key path>: <what is wrong>`. Settings files are
written by whoever wrote the profile, so reading one is bounded: UTF-8 text of at most MAX_BYTES, nesting
at most MAX_DEPTH deep, and at most MAX_NODES values once aliases are expanded (a few hundred bytes of
`&a [*a, *a, ...]` otherwise expand to millions of values); error messages quote short prefixes only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eulerpub.errors import ConfigError, quote

MAX_BYTES = 1024 * 1024  # a profile is a few hundred bytes, release.yaml a few KiB
MAX_DEPTH = 32  # profiles nest four levels deep (clouds.aws.tags.KEY)
MAX_NODES = 20_000  # values after alias expansion; release.yaml's matrix needs a few hundred


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures the composed document before anything is built from it."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1  # refuse deep nesting while composing, long before Python's recursion limit
        try:
            if self._depth > MAX_DEPTH:
                raise _TooBig(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_size(node)
        return node


class _TooBig(Exception):
    pass


def _check_size(root: yaml.Node) -> None:
    """Count the document's values as a consumer sees them (every use of an alias counts again) and its depth,
    without expanding anything: each node's expanded size is computed once."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested more than {MAX_DEPTH} levels deep")
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a node reached again while being measured (a recursive alias) counts once
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        if total > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} values once its aliases are expanded")
        sizes[id(node)] = total
        return total

    size(root, 0)


def read_mapping(path: Path, *, missing: str = "no such file") -> dict[str, Any]:
    """The YAML mapping in `path` (an empty file is an empty mapping); `missing` says what to do if absent."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; not a settings file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})") from None
    try:
        data = yaml.load(text, Loader=_BoundedLoader)
    except _TooBig as exc:
        raise ConfigError(f"{path}: refused, {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: refused, nested more than {MAX_DEPTH} levels deep") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{path}: not a text file (character {exc.character!r} at position {exc.position})") \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: malformed YAML ({problem})") from None
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
        location += f"[{part}]" if isinstance(part, int) else (f".{quote(part)[1:-1]}" if location
                                                               else quote(part)[1:-1])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "literal_error":
        message = f"expected {error['ctx']['expected']}, got {quote(error['input'])}"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if not location and error["type"] == "value_error":  # a whole-file check; its message names the key
        return f"{path}: {message}{more}"
    return f"{path}: {location or '(top level)'}: {message}{more}"
