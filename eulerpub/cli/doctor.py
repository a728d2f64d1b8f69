"""`eulerpub doctor` (being written)."""

from eulerpub.errors import UsageError


def command() -> None:
    """Not available yet."""
    raise UsageError("`eulerpub doctor` is not available yet")
