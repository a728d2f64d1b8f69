"""`eulerpub build` (being written)."""

from eulerpub.errors import UsageError


def command() -> None:
    """Not available yet."""
    raise UsageError("`eulerpub build` is not available yet")
