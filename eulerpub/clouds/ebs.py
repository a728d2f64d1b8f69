"""EBS direct upload (like awslabs/coldsnap): a raw disk image straight into an EBS snapshot.

- The image is read in 512 KiB blocks; holes (SEEK_DATA/SEEK_HOLE) are skipped without reading and all-zero
  blocks are never sent, so a sparse 8 GiB image with 1 GiB of data sends about 1 GiB.
- Each block carries its SHA-256; completion carries the LINEAR aggregate (the SHA-256 of the per-block
  digests in index order), so EBS verifies the whole snapshot.
- A pool of workers sends blocks, each block retried on its own under eulerpub.retry for up to
  `BLOCK_RETRY_SECONDS`, which also rides out the 404s a brand-new snapshot answers for a while; every request
  has an explicit timeout (eulerpub.clouds.boto).
- `start_snapshot` carries a ClientToken derived from the build id, image sha256 and attempt, so a repeated
  start returns the same snapshot.
- The snapshot id and the indexes of blocks sent are saved to the checkpoint (the journal) in batches: a
  killed run that finds its snapshot still `pending` sends only the missing blocks. A run that gives up
  (a permanent error) deletes the incomplete snapshot.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from eulerpub import retry
from eulerpub.clouds import boto
from eulerpub.clouds.base import Checkpoint, ProgressCallback, whole_gib
from eulerpub.errors import CloudError, EulerpubError

log = logging.getLogger(__name__)

BLOCK_SIZE = 512 * 1024  # the only block size the EBS direct APIs accept
ZERO_BLOCK = bytes(BLOCK_SIZE)
DEFAULT_WORKERS = 16  # coldsnap uses 64 on EC2; 16 keeps a laptop's uplink full without hitting the API's rate
IN_FLIGHT_PER_WORKER = 2  # blocks read ahead per worker: bounds memory (16 x 2 x 512 KiB = 16 MiB)
SAVE_EVERY_BLOCKS = 64  # journal batch: a kill -9 re-sends at most 32 MiB already sent
# Minutes without writes after which EBS cancels the snapshot by itself: long enough that a killed run can be
# resumed the next day, short enough that an abandoned one does not linger (the API allows 10-4320).
SNAPSHOT_IDLE_TIMEOUT_MINUTES = 24 * 60
# Right after StartSnapshot, PutSnapshotBlock may answer ResourceNotFoundException (HTTP 404) until the new
# snapshot is visible to the block API (eventual consistency). coldsnap retries each block for about two minutes
# to get past it; giving up sooner would delete a snapshot that was about to accept blocks. Throttling and 5xx on
# a block get the same window.
BLOCK_RETRY_SECONDS = 120.0
NOT_VISIBLE_YET = "ResourceNotFoundException"  # the EBS direct error code for "no such snapshot (yet)"


def data_blocks(fd: int, size: int) -> Iterator[int]:
    """Indexes of the blocks that hold data, per the filesystem's extent map (all of them if it has none).

    Holes are skipped without reading them; blocks inside data extents may still turn out to be all zeros.
    """
    count = math.ceil(size / BLOCK_SIZE)
    offset = 0
    try:
        while offset < size:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            last = math.ceil(end / BLOCK_SIZE)
            yield from range(start // BLOCK_SIZE, last)  # `offset` is block aligned, so no block comes twice
            offset = last * BLOCK_SIZE
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no data after `offset`: the rest is a hole
            return
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP) and offset == 0:  # no SEEK_DATA here: read everything
            yield from range(count)
            return
        raise


def to_ranges(indexes: Iterable[int]) -> list[list[int]]:
    """[1,2,3,7,8] -> [[1,4],[7,9]]: half-open ranges, so a journal of a million blocks stays small."""
    ranges: list[list[int]] = []
    for index in sorted(set(indexes)):
        if ranges and ranges[-1][1] == index:
            ranges[-1][1] = index + 1
        else:
            ranges.append([index, index + 1])
    return ranges


def from_ranges(ranges: Iterable[Iterable[int]]) -> set[int]:
    result: set[int] = set()
    for start, end in ranges:
        result.update(range(start, end))
    return result


def linear_checksum(digests: dict[int, bytes]) -> str:
    """EBS's LINEAR aggregate: SHA-256 over the raw per-block digests in block-index order, base64."""
    return base64.b64encode(hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()).decode()


def _block_retryable(exc: BaseException) -> bool:
    """A block is sent again on the usual transient failures, and while the new snapshot is not visible yet."""
    return retry.is_transient(exc) or boto.error_code(exc) == NOT_VISIBLE_YET


@dataclass(frozen=True)
class SnapshotUpload:
    snapshot_id: str
    blocks: int  # non-zero blocks in the snapshot
    sent_bytes: int  # bytes this run sent


class EbsUploader:
    """Uploads one raw image into a new EBS snapshot; `run()` resumes from the checkpoint after a crash."""

    def __init__(self, ebs: Any, ec2: Any, region: str, path: Path, *, volume_size: int, token_base: str,
                 tags: dict[str, str], description: str, checkpoint: Checkpoint, progress: ProgressCallback,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.ebs = ebs
        self.ec2 = ec2
        self.region = region
        self.path = path
        self.size = path.stat().st_size
        self.volume_gib = whole_gib(max(volume_size, self.size))
        self.token_base = token_base
        self.tags = tags
        self.description = description
        self.checkpoint = checkpoint
        self.progress = progress
        self.workers = workers
        self._lock = threading.Lock()
        self._sent: set[int] = set()
        self._sent_bytes = 0

    # -- the snapshot ---------------------------------------------------------------------------------------

    def _snapshot_state(self, snapshot_id: str) -> str | None:
        with boto.errors("aws", self.region, "describe_snapshots", snapshot_id):
            try:
                found = retry.call(self.ec2.describe_snapshots, SnapshotIds=[snapshot_id])["Snapshots"]
            except ClientError as exc:
                if boto.error_code(exc) == "InvalidSnapshot.NotFound":
                    return None
                raise
        return found[0]["State"] if found else None

    def _start(self, attempt: int) -> str:
        token = f"{self.token_base}-{attempt}"
        response = boto.call("aws", self.region, "start_snapshot", self.ebs.start_snapshot,
                             VolumeSize=self.volume_gib, ClientToken=token, Description=self.description,
                             Timeout=SNAPSHOT_IDLE_TIMEOUT_MINUTES,
                             Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()])
        snapshot_id = response["SnapshotId"]
        if response.get("BlockSize", BLOCK_SIZE) != BLOCK_SIZE:
            raise CloudError("aws", self.region, "start_snapshot",
                             f"unexpected block size {response['BlockSize']}", snapshot_id)
        self.checkpoint.update(snapshot_id=snapshot_id, attempt=attempt, sent=[])
        log.info("%s: started snapshot %s (%d GiB)", self.region, snapshot_id, self.volume_gib)
        return snapshot_id

    def _resume_or_start(self) -> tuple[str, bool]:
        """(snapshot id, already completed)."""
        state = self.checkpoint.data
        attempt = int(state.get("attempt", 1))
        snapshot_id = state.get("snapshot_id")
        if snapshot_id:
            status = self._snapshot_state(snapshot_id)
            if status == "completed":
                return snapshot_id, True
            if status == "pending":
                self._sent = from_ranges(state.get("sent", []))
                log.info("%s: resuming snapshot %s, %d blocks already sent", self.region, snapshot_id,
                         len(self._sent))
                return snapshot_id, False
            log.info("%s: snapshot %s is %s; starting a new one", self.region, snapshot_id, status or "gone")
            attempt += 1
        return self._start(attempt), False

    def delete(self, snapshot_id: str) -> None:
        try:
            retry.call(self.ec2.delete_snapshot, SnapshotId=snapshot_id)
            log.info("%s: deleted incomplete snapshot %s", self.region, snapshot_id)
        except Exception as exc:  # best effort: EBS also cancels it after SNAPSHOT_IDLE_TIMEOUT_MINUTES
            log.warning("%s: could not delete incomplete snapshot %s (%s)", self.region, snapshot_id, exc)
        self.checkpoint.clear()

    # -- the blocks -----------------------------------------------------------------------------------------

    def _block(self, fd: int, index: int) -> bytes | None:
        data = os.pread(fd, BLOCK_SIZE, index * BLOCK_SIZE)
        if len(data) < BLOCK_SIZE:
            data += bytes(BLOCK_SIZE - len(data))  # the API takes whole blocks: pad the last one
        return None if data == ZERO_BLOCK else data

    def _put(self, snapshot_id: str, index: int, data: bytes, checksum: str) -> None:
        with boto.errors("aws", self.region, "put_snapshot_block",
                         f"{snapshot_id} block {index} (offset {index * BLOCK_SIZE})"):
            retry.retrying(retry_on=_block_retryable, deadline=BLOCK_RETRY_SECONDS)(
                self.ebs.put_snapshot_block, SnapshotId=snapshot_id, BlockIndex=index, BlockData=data,
                DataLength=BLOCK_SIZE, Checksum=checksum, ChecksumAlgorithm="SHA256")
        with self._lock:
            self._sent.add(index)
            self._sent_bytes += BLOCK_SIZE
            batch_full = len(self._sent) % SAVE_EVERY_BLOCKS == 0
            sent = to_ranges(self._sent) if batch_full else None
        self.progress(BLOCK_SIZE)
        if sent is not None:
            self.checkpoint.update(sent=sent)

    def _send_all(self, snapshot_id: str) -> dict[int, bytes]:
        """Hash every non-zero block, send the ones not sent yet; return the digests by index."""
        digests: dict[int, bytes] = {}
        slots = threading.BoundedSemaphore(self.workers * IN_FLIGHT_PER_WORKER)
        failed = threading.Event()
        futures: list[Future[None]] = []

        def send(index: int, data: bytes, checksum: str) -> None:
            try:
                self._put(snapshot_id, index, data, checksum)
            except BaseException:
                failed.set()
                raise
            finally:
                slots.release()

        fd = os.open(self.path, os.O_RDONLY)
        try:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="block") as pool:
                for index in data_blocks(fd, self.size):
                    data = self._block(fd, index)
                    if data is None:
                        continue
                    digest = hashlib.sha256(data).digest()
                    digests[index] = digest
                    if index in self._sent:
                        continue
                    slots.acquire()
                    if failed.is_set():
                        slots.release()
                        break  # a block failed for good: stop reading, report below
                    futures.append(pool.submit(send, index, data, base64.b64encode(digest).decode()))
                wait(futures, return_when=FIRST_EXCEPTION)
                failures = [f.exception() for f in futures if f.done() and f.exception()]
                if failures:
                    for future in futures:
                        future.cancel()
                    raise failures[0]  # type: ignore[misc]
        finally:
            os.close(fd)
        return digests

    def _complete(self, snapshot_id: str, digests: dict[int, bytes]) -> None:
        boto.call("aws", self.region, "complete_snapshot", self.ebs.complete_snapshot, snapshot_id,
                  SnapshotId=snapshot_id, ChangedBlocksCount=len(digests), Checksum=linear_checksum(digests),
                  ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
        self.checkpoint.update(sent=to_ranges(self._sent), completed=True)

    def run(self) -> SnapshotUpload:
        snapshot_id, completed = self._resume_or_start()
        if completed:
            log.info("%s: snapshot %s is already complete", self.region, snapshot_id)
            return SnapshotUpload(snapshot_id, len(from_ranges(self.checkpoint.get("sent", []))), 0)
        self.progress(len(self._sent) * BLOCK_SIZE)
        try:
            digests = self._send_all(snapshot_id)
            self._complete(snapshot_id, digests)
        except EulerpubError as exc:
            self.checkpoint.update(sent=to_ranges(self._sent))
            if isinstance(exc, CloudError) and retry.is_transient(exc.__cause__ or exc):
                raise CloudError("aws", self.region, "upload", f"{exc.message}; re-run to resume snapshot "
                                 f"{snapshot_id} ({len(self._sent)} blocks sent)", snapshot_id) from exc
            self.delete(snapshot_id)
            raise
        log.info("%s: snapshot %s holds %d blocks; sent %d bytes this run", self.region, snapshot_id, len(digests),
                 self._sent_bytes)
        return SnapshotUpload(snapshot_id, len(digests), self._sent_bytes)
