"""`eulerpub release` (being written)."""

from eulerpub.errors import UsageError


def command() -> None:
    """Not available yet."""
    raise UsageError("`eulerpub release` is not available yet")
