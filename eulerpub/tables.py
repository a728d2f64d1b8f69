"""The one plain-text table eulerpub prints (publish report, release summary, the listings): a header row, columns
left-aligned two spaces apart, no trailing blanks. Rendering only: the CLI prints it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def render(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """`header` and `rows` (each as long as the header) as aligned lines joined by newlines."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in table)
