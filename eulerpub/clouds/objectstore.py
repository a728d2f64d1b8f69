"""One S3-compatible multipart uploader for AWS S3, Huawei OBS, Tencent COS and Alibaba OSS.

- The part size follows the file size (at least 8 MiB, at most 10,000 parts); parts go up in parallel.
- Each part carries its SHA-256 (`ChecksumSHA256`) where the store supports it (S3), or its `Content-MD5` where
  the store verifies only that (OBS and COS ignore `x-amz-checksum-*`): a setting per store.
- The UploadId is saved in the caller's checkpoint (the publish journal) as soon as it exists, so a killed
  upload resumes: `list_parts` says which parts the store already holds and only the rest are sent.
- An object already there with the same size and `sha256` metadata is not uploaded again.
- The object carries eulerpub's tags as user metadata (every S3-compatible store keeps it), and as object tags
  where the store takes them at creation (S3, at most 10: eulerpub's own first, one sentence when the user's do
  not fit): `list_leftovers` recognises eulerpub's uploads by that metadata.
- A permanent failure aborts the multipart upload; a transient one that outlasted the retries keeps it, so
  the next run resumes it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from eulerpub import retry
from eulerpub.clouds import boto
from eulerpub.clouds.base import (
    OBJECT_PREFIX,
    TAG_ARCH,
    TAG_BUILD_ID,
    TAG_MANAGED_BY,
    TAG_PROFILE,
    TAG_RELEASE,
    Checkpoint,
    Leftover,
    ProgressCallback,
)
from eulerpub.errors import CloudError, EulerpubError, UsageError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's (and OBS's, COS's) smallest allowed part, except the last
DEFAULT_PART_SIZE = 8 * MiB  # boto3's default too: small enough to retry cheaply, big enough to keep the pipe full
MAX_PARTS = 10_000  # S3/OBS/COS refuse part numbers above 10,000
MAX_PART_SIZE = 5 * 1024 * MiB  # S3's largest part
# Parts in flight. Far from the region one TCP connection is held to its window over the RTT, or less where
# packets are lost, so the throughput grows with the connections (AWS's S3 performance guidelines: many
# concurrent requests). 16, as the EBS uploader, where boto3's upload_file opens 10: at 40 ms RTT and 4 MB/s
# per connection (docs/benchmarks.md) 8 were slower than boto3. 16 x 8 MiB parts stay within MEMORY_BUDGET.
DEFAULT_WORKERS = 16
MEMORY_BUDGET = 512 * MiB  # parts in flight are held in memory: workers x part size stays under this
SAVE_EVERY_PARTS = 16  # how often the parts-done count is written to the journal (list_parts is the truth)
# "You can associate up to 10 tags with an object" (S3 User Guide, "Categorizing your storage using tags").
MAX_OBJECT_TAGS = 10
SHA256_METADATA = "sha256"  # x-amz-meta-sha256 on the object: lets a re-run skip an identical upload
# eulerpub's own tags, kept as user metadata (x-amz-meta-eulerpub-build-id, ...): a header name cannot hold ':'.
METADATA_TAGS = {tag: tag.replace(":", "-") for tag in (TAG_BUILD_ID, TAG_PROFILE, TAG_RELEASE, TAG_ARCH,
                                                          TAG_MANAGED_BY)}


@dataclass(frozen=True)
class StoreSettings:
    """How to talk to one S3-compatible store."""

    cloud: str  # for messages: "aws", "huawei", "tencent", "alibaba"
    region: str
    endpoint_url: str | None = None  # None: boto3's default (AWS_ENDPOINT_URL honoured)
    addressing_style: Literal["auto", "virtual", "path"] = "auto"
    checksum_sha256: bool = True  # per-part ChecksumSHA256 (S3 validates it; OBS/COS do not support it)
    content_md5: bool = False  # per-part Content-MD5 (OBS and COS verify it, ignoring x-amz-checksum-*)
    checksum_when_required: bool = False  # OBS/COS: don't send boto3's default CRC headers
    object_tags: bool = True  # object tags at creation (S3); OBS/COS keep eulerpub's tags as metadata only
    # None: AWS's chain; a CredentialSource is asked at every request (Alibaba's chain, which refreshes STS tokens)
    credentials: boto.StaticCredentials | boto.CredentialSource | None = field(default=None, repr=False)
    workers: int = DEFAULT_WORKERS


def make_store_client(settings: StoreSettings) -> Any:
    return boto.make_client("s3", settings.region, endpoint_url=settings.endpoint_url,
                            credentials=settings.credentials, pool_size=settings.workers + 2,
                            s3={"addressing_style": settings.addressing_style},
                            checksum_when_required=settings.checksum_when_required)


def choose_part_size(size: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The smallest part size >= `preferred` (and >= 5 MiB) that fits `size` in 10,000 parts, in whole MiB."""
    needed = math.ceil(size / MAX_PARTS)
    part = max(preferred, MIN_PART_SIZE, math.ceil(needed / MiB) * MiB)
    if part > MAX_PART_SIZE:
        raise UsageError(f"a {size}-byte file does not fit in {MAX_PARTS} parts of at most {MAX_PART_SIZE} bytes")
    return part


def part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def object_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The object tags of an upload: eulerpub's own first, then the user's (profile and --tag); UsageError when
    they do not all fit S3's 10 per object."""
    own = {k: v for k, v in tags.items() if k in METADATA_TAGS}
    user = {k: v for k, v in tags.items() if k not in METADATA_TAGS}
    if len(own) + len(user) > MAX_OBJECT_TAGS:
        raise UsageError(f"S3 keeps at most {MAX_OBJECT_TAGS} tags on an object and eulerpub's own take {len(own)}, "
                         f"so the {len(user)} user tags (profile and --tag) do not fit on the upload; use at most "
                         f"{MAX_OBJECT_TAGS - len(own)}, or --upload ebs (an AMI and its snapshot take 50)")
    return {**own, **user}


def object_metadata(tags: Mapping[str, str]) -> dict[str, str]:
    """The user metadata an upload carries for `tags`: eulerpub's own tags only (values are ASCII ids)."""
    return {METADATA_TAGS[k]: v for k, v in tags.items() if k in METADATA_TAGS}


def tags_from_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """eulerpub's tags back from an object's user metadata (the store lower-cases the keys)."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    return {tag: lowered[key] for tag, key in METADATA_TAGS.items() if key in lowered}


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    sent_bytes: int  # bytes this call sent; 0 when the object was already complete


class Uploader:
    """Uploads one file to one bucket/key; `run()` is safe to call again after any interruption."""

    def __init__(self, client: Any, settings: StoreSettings, bucket: str, key: str, path: Path, *, size: int,
                 sha256: str, checkpoint: Checkpoint, progress: ProgressCallback,
                 part_size: int | None = None, tags: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.settings = settings
        self.bucket = bucket
        self.key = key
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.checkpoint = checkpoint
        self.progress = progress
        self.part_size = part_size or choose_part_size(size)
        self.tags = dict(tags or {})
        self._sent = 0
        self._lock = threading.Lock()

    def _errors(self, operation: str) -> AbstractContextManager[None]:
        return boto.errors(self.settings.cloud, self.settings.region, operation, f"{self.bucket}/{self.key}")

    def _call(self, operation: str, fn: Any, **kwargs: Any) -> Any:
        return boto.call(self.settings.cloud, self.settings.region, operation, fn,
                         resource_id=f"{self.bucket}/{self.key}", **kwargs)

    # -- what is there already ---------------------------------------------------------------------------

    def find_complete(self) -> bool:
        """True if the object exists with this file's size and sha256."""
        head = head_object(self.client, self.settings, self.bucket, self.key)
        return (head is not None and head.get("ContentLength") == self.size
                and head.get("Metadata", {}).get(SHA256_METADATA) == self.sha256)

    def _parts_held(self, upload_id: str) -> dict[int, dict[str, Any]] | None:
        """Parts the store holds for `upload_id` that have the expected size; None if the upload is gone."""
        held: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            with self._errors("list_parts"):
                try:
                    page = retry.call(self.client.list_parts, Bucket=self.bucket, Key=self.key,
                                      UploadId=upload_id, PartNumberMarker=marker)
                except ClientError as exc:
                    if boto.error_code(exc) in ("NoSuchUpload", "404"):
                        return None
                    raise
            for part in page.get("Parts", []):
                number = part["PartNumber"]
                if part["Size"] == self._part_length(number):
                    held[number] = {"PartNumber": number, "ETag": part["ETag"],
                                    **({"ChecksumSHA256": part["ChecksumSHA256"]}
                                       if part.get("ChecksumSHA256") else {})}
            if not page.get("IsTruncated"):
                return held
            marker = int(page["NextPartNumberMarker"])

    def _part_length(self, number: int) -> int:
        start = (number - 1) * self.part_size
        return min(self.part_size, self.size - start)

    # -- the upload ---------------------------------------------------------------------------------------

    def _start(self) -> str:
        extra: dict[str, str] = {"ChecksumAlgorithm": "SHA256"} if self.settings.checksum_sha256 else {}
        if self.tags and self.settings.object_tags:
            extra["Tagging"] = urlencode(object_tags(self.tags))
        metadata = {**object_metadata(self.tags), SHA256_METADATA: self.sha256}
        response = self._call("create_multipart_upload", self.client.create_multipart_upload, Bucket=self.bucket,
                              Key=self.key, Metadata=metadata, ContentType="application/octet-stream", **extra)
        upload_id = response["UploadId"]
        self.checkpoint.update(upload_id=upload_id, part_size=self.part_size, bucket=self.bucket, key=self.key,
                               parts_done=0)
        return upload_id

    def _resume_or_start(self) -> tuple[str, dict[int, dict[str, Any]]]:
        state = self.checkpoint.data
        upload_id = state.get("upload_id")
        if upload_id and state.get("key") == self.key and state.get("bucket") == self.bucket:
            self.part_size = int(state.get("part_size", self.part_size))
            held = self._parts_held(upload_id)
            if held is not None:
                log.info("%s/%s: resuming upload %s, %d of %d parts already stored", self.bucket, self.key,
                         upload_id, len(held), part_count(self.size, self.part_size))
                return upload_id, held
            log.info("%s/%s: upload %s is gone; starting over", self.bucket, self.key, upload_id)
        return self._start(), {}

    def _send_part(self, fd: int, upload_id: str, number: int, done: dict[int, dict[str, Any]]) -> None:
        length = self._part_length(number)
        data = os.pread(fd, length, (number - 1) * self.part_size)
        if len(data) != length:
            raise UsageError(f"{self.path} changed while it was being uploaded (short read at part {number})")
        extra = {"ChecksumSHA256": b64_sha256(data)} if self.settings.checksum_sha256 else {}
        md5 = {"ContentMD5": b64_md5(data)} if self.settings.content_md5 else {}
        response = self._call("upload_part", self.client.upload_part, Bucket=self.bucket, Key=self.key,
                              UploadId=upload_id, PartNumber=number, Body=data, ContentLength=length, **extra,
                              **md5)
        entry = {"PartNumber": number, "ETag": response["ETag"], **extra}
        with self._lock:
            done[number] = entry
            self._sent += length
            count = len(done)
        self.progress(length)
        self.checkpoint.update(save=count % SAVE_EVERY_PARTS == 0, parts_done=count)

    def _send_missing(self, upload_id: str, done: dict[int, dict[str, Any]]) -> None:
        missing = [n for n in range(1, part_count(self.size, self.part_size) + 1) if n not in done]
        workers = max(1, min(self.settings.workers, MEMORY_BUDGET // self.part_size, len(missing) or 1))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="part") as pool:
                futures = [pool.submit(self._send_part, fd, upload_id, n, done) for n in missing]
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failure = next((f.exception() for f in finished if f.exception()), None)
                if failure is not None:
                    for future in futures:
                        future.cancel()
                    raise failure
        finally:
            os.close(fd)

    def _complete(self, upload_id: str, done: dict[int, dict[str, Any]]) -> None:
        parts = [done[n] for n in sorted(done)]
        with self._errors("complete_multipart_upload"):
            try:
                retry.call(self.client.complete_multipart_upload, Bucket=self.bucket, Key=self.key,
                           UploadId=upload_id, MultipartUpload={"Parts": parts})
            except ClientError as exc:
                # A completion whose response was lost is retried into NoSuchUpload: the object tells the truth.
                if boto.error_code(exc) == "NoSuchUpload" and self.find_complete():
                    return
                raise

    def _abort(self, upload_id: str) -> None:
        try:
            retry.call(self.client.abort_multipart_upload, Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception as exc:  # best effort: the store expires abandoned uploads by lifecycle rules too
            log.warning("%s/%s: could not abort upload %s (%s)", self.bucket, self.key, upload_id, exc)
        self.checkpoint.clear()

    def run(self) -> StoredObject:
        if self.find_complete():
            log.info("%s/%s is already uploaded (same size and sha256)", self.bucket, self.key)
            self.progress(self.size)
            return StoredObject(self.bucket, self.key, self.size, 0)
        upload_id, done = self._resume_or_start()
        self.progress(sum(self._part_length(n) for n in done))
        try:
            self._send_missing(upload_id, done)
            self._complete(upload_id, done)
        except EulerpubError as exc:
            cause = exc.__cause__ or exc
            if isinstance(exc, CloudError) and retry.is_transient(cause):
                self.checkpoint.save()
                raise CloudError(self.settings.cloud, self.settings.region, "upload",
                                 f"{exc.message.split(': ', 1)[-1]}; re-run to resume upload {upload_id}",
                                 f"{self.bucket}/{self.key}") from exc
            self._abort(upload_id)
            raise
        self.checkpoint.update(parts_done=len(done))
        return StoredObject(self.bucket, self.key, self.size, self._sent)


def upload_file(client: Any, settings: StoreSettings, bucket: str, key: str, path: Path, *, size: int, sha256: str,
                checkpoint: Checkpoint, progress: ProgressCallback, part_size: int | None = None,
                tags: Mapping[str, str] | None = None) -> StoredObject:
    """Upload `path` to `bucket`/`key` (resuming, or skipping when it is already there), carrying eulerpub's
    `tags` as metadata and all of `tags` as object tags where the store takes them; see `Uploader`."""
    return Uploader(client, settings, bucket, key, path, size=size, sha256=sha256, checkpoint=checkpoint,
                    progress=progress, part_size=part_size, tags=tags).run()


def check_bucket(client: Any, settings: StoreSettings, bucket: str) -> None:
    """Preflight: the bucket exists and these credentials can reach it (one sentence if not)."""
    with boto.errors(settings.cloud, settings.region, "head_bucket", bucket):
        try:
            retry.call(client.head_bucket, Bucket=bucket)
        except ClientError as exc:
            code = boto.error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(f"bucket {bucket!r} does not exist in {settings.cloud}/{settings.region}; "
                                 "create it or pass another --bucket") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise CloudError(settings.cloud, settings.region, "head_bucket",
                                 "access denied; these credentials cannot use the bucket", bucket) from None
            raise


def delete_object(client: Any, settings: StoreSettings, bucket: str, key: str) -> None:
    """Delete an object; one already gone is fine."""
    boto.call(settings.cloud, settings.region, "delete_object", client.delete_object, f"{bucket}/{key}",
              Bucket=bucket, Key=key)


def head_object(client: Any, settings: StoreSettings, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's head (size, user metadata), or None when there is no such object."""
    with boto.errors(settings.cloud, settings.region, "head_object", f"{bucket}/{key}"):
        try:
            return retry.call(client.head_object, Bucket=bucket, Key=key)
        except ClientError as exc:
            if boto.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise


def list_leftovers(client: Any, settings: StoreSettings, bucket: str) -> list[Leftover]:
    """The objects under `OBJECT_PREFIX` in `bucket` whose metadata says eulerpub uploaded them (one
    head_object each: listings carry no metadata). Objects without that metadata are not eulerpub's to judge."""
    found: list[Leftover] = []
    token: dict[str, str] = {}
    while True:
        page = boto.call(settings.cloud, settings.region, "list_objects_v2", client.list_objects_v2, bucket,
                         Bucket=bucket, Prefix=OBJECT_PREFIX, **token)
        for entry in page.get("Contents", []):
            key = entry["Key"]
            head = head_object(client, settings, bucket, key)
            tags = tags_from_metadata(head.get("Metadata", {})) if head is not None else {}  # None: deleted since
            if tags:
                found.append(Leftover("object", key, entry["LastModified"].isoformat(), tags, bucket))
        if not page.get("IsTruncated"):
            return found
        token = {"ContinuationToken": page["NextContinuationToken"]}
