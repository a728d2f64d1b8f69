"""`eulerpub fetch` (being written)."""

from eulerpub.errors import UsageError


def command() -> None:
    """Not available yet."""
    raise UsageError("`eulerpub fetch` is not available yet")
