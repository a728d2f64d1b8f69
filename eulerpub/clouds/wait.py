"""Waiting for cloud-side jobs (imports, copies, snapshots): poll, report progress, fail fast, time out.

Shared by every adapter: each supplies a `describe()` that maps its API's answer to a `JobStatus`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from eulerpub import retry
from eulerpub.clouds.base import PercentCallback, WaitParams
from eulerpub.errors import CloudError, WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class JobStatus(Generic[T]):
    state: Literal["running", "done", "failed"]
    percent: int | None = None
    detail: str = ""  # the cloud's status message or failure reason
    result: T | None = None


def wait_for(describe: Callable[[], JobStatus[T]], *, cloud: str, region: str, what: str, resource_id: str,
             params: WaitParams, progress: PercentCallback,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """Poll `describe` (under the retry policy) until the job is done, and return its result.

    A failed job raises CloudError with the cloud's reason at once; a job still running after
    `params.timeout` raises WaitTimeout, which tells the user that a re-run keeps waiting on the same job.
    """
    deadline = clock() + params.timeout
    while True:
        status = retry.call(describe)
        if status.percent is not None:
            progress(max(0, min(100, status.percent)))
        if status.state == "done":
            progress(100)
            assert status.result is not None, "a finished job carries its result"
            return status.result
        if status.state == "failed":
            raise CloudError(cloud, region, what, status.detail or "failed", resource_id)
        if clock() >= deadline:
            minutes = params.timeout / 60
            raise WaitTimeout(f"{cloud}/{region}: {what} {resource_id} is still running after {minutes:.0f} "
                              f"minutes ({status.detail or 'no detail'}); re-run the same command to keep waiting")
        sleep(params.interval)
