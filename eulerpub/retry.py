"""The one retry policy: which failures are transient, and how long to back off.

Every network call that may meet throttling, 5xx or a dropped connection goes through `retrying`.
SDK-level retries are switched off where eulerpub retries, so attempts never multiply.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable
from typing import TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 8            # throttling storms last seconds to a minute; 8 jittered attempts span ~2 minutes
BACKOFF_START = 0.5     # seconds; first retry comes quickly for a dropped connection
BACKOFF_MAX = 30.0      # seconds; clouds ask clients to back off, not to give up
# Ceiling on attempts that each made progress (see `retrying(progress=...)`): a 1 GiB download over a link
# that drops every 10 MiB still finishes, a server that trickles a few bytes per connection does not loop forever.
ATTEMPTS_WITH_PROGRESS = 200

# Each cloud adapter registers the function that recognises its SDK's transient errors (throttling codes,
# its own connection errors), so this module knows no cloud: `register_classifier(fn)` at the adapter's import.
# A classifier returns True (transient), False (permanent) or None (not an error of my SDK); the first verdict wins.
Classifier = Callable[[BaseException], bool | None]
_classifiers: list[Classifier] = []


def register_classifier(fn: Classifier) -> None:
    """Add a cloud SDK's classifier (idempotent: registering the same function twice keeps one)."""
    if fn not in _classifiers:
        _classifiers.append(fn)


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status of a `requests` failure (HTTPError carries its response)."""
    response = getattr(exc, "response", None)
    return response.status_code if isinstance(response, requests.Response) else None


def _causes(exc: BaseException, depth: int = 8) -> list[BaseException]:
    """`exc` and what it wraps: its cause/context chain, exceptions in its args, urllib3's `reason`."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < depth * 4:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))
    return seen


def unresolvable_host(exc: BaseException) -> str | None:
    """The host name whose DNS lookup failed, if that is what `exc` (or what it wraps) is about.

    A failed lookup means no network, no DNS or a misspelt host: retrying for two minutes changes nothing.
    """
    causes = _causes(exc)
    for each in causes:
        host = getattr(each, "_host", None)  # urllib3's NameResolutionError (also inside requests and the SDKs)
        if isinstance(host, str) and host:
            return host
    return "a host name" if any(isinstance(each, socket.gaierror) for each in causes) else None


def is_transient(exc: BaseException) -> bool:
    """True for throttling, server-side 5xx and connection-level failures (but not a failed DNS lookup)."""
    if unresolvable_host(exc) is not None:
        return False
    for classify in _classifiers:
        verdict = classify(exc)
        if verdict is not None:
            return verdict
    # ChunkedEncodingError is how requests reports a connection dropped in the middle of a body.
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        ConnectionError, TimeoutError)):
        return True
    status = _status_code(exc)
    return status is not None and (status == 429 or status >= 500)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    code = getattr(exc, "error_code", None) or getattr(exc, "code", None)
    reason = code if isinstance(code, str) and code else f"{type(exc).__name__}: {str(exc)[:120]}"
    log.warning("%s: transient failure (%s), attempt %d, retrying",
                state.fn.__name__ if state.fn else "call", reason, state.attempt_number)


class _Stalls:
    """Counts failed attempts since the last progress, so a long download that keeps advancing between
    dropped connections keeps its retry budget (and short backoffs), while a dead server still fails fast."""

    def __init__(self, progress: Callable[[], int], max_wait: float) -> None:
        self._progress = progress
        self._max_wait = max_wait
        self._mark: int | None = None
        self.count = 0

    def observe(self, _state: RetryCallState) -> None:
        now = self._progress()
        if now != self._mark:
            self._mark, self.count = now, 0
        self.count += 1

    def wait(self, _state: RetryCallState) -> float:
        return random.uniform(0, min(self._max_wait, BACKOFF_START * 2 ** (self.count - 1)))


def retrying(*, attempts: int = ATTEMPTS, max_wait: float = BACKOFF_MAX,
             retry_on: Callable[[BaseException], bool] = is_transient,
             progress: Callable[[], int] | None = None, deadline: float | None = None) -> Retrying:
    """A tenacity `Retrying` with eulerpub's policy; use as `retrying()(fn, *args)` or as a loop.

    With `progress` (e.g. bytes received so far), only attempts that made no progress count against
    `attempts`, and the backoff restarts after progress. With `deadline` (seconds), retrying goes on until
    that much time has passed instead of counting attempts: for a condition the cloud documents as clearing
    within a bounded time (a new EBS snapshot becoming visible to PutSnapshotBlock).
    """
    if progress is not None:
        stalls = _Stalls(progress, max_wait)

        def stop(state: RetryCallState) -> bool:
            return stalls.count >= attempts or state.attempt_number >= ATTEMPTS_WITH_PROGRESS

        return Retrying(retry=retry_if_exception(retry_on), after=stalls.observe, wait=stalls.wait, stop=stop,
                        before_sleep=_log_retry, reraise=True)
    return Retrying(
        retry=retry_if_exception(retry_on),
        wait=wait_random_exponential(multiplier=BACKOFF_START, max=max_wait),
        stop=stop_after_delay(deadline) if deadline is not None else stop_after_attempt(attempts),
        before_sleep=_log_retry,
        reraise=True,
    )


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call `fn` under the retry policy."""
    return retrying()(fn, *args, **kwargs)
