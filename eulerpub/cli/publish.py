"""`eulerpub publish` (being written)."""

from eulerpub.errors import UsageError


def command() -> None:
    """Not available yet."""
    raise UsageError("`eulerpub publish` is not available yet")
