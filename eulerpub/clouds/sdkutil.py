"""Plumbing shared by the adapters whose APIs are not boto3 (Huawei IMS, Tencent CVM).

Each of those adapters supplies only its API steps; what they have in common lives here:
- reading credentials and endpoint overrides from the environment (the secret never leaves the process);
- staging the disk in the cloud's S3-compatible object storage (OBS, COS) through the one uploader;
- turning an SDK exception into eulerpub's one-sentence errors, under the one retry policy;
- the build marker in image descriptions and the eulerpub tags, which let a re-run find its images even where
  a copy loses its tags (Tencent's SyncImages copies none).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eulerpub import retry
from eulerpub.clouds import boto, objectstore
from eulerpub.clouds.base import (
    MANAGED_BY,
    TAG_BUILD_ID,
    TAG_MANAGED_BY,
    TAG_PROFILE,
    Checkpoint,
    ImageRef,
    Leftover,
    ProgressCallback,
    PublishSpec,
    Upload,
    whole_gib,
)
from eulerpub.errors import CloudError, CredentialsError, EulerpubError, UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")


# -- environment ----------------------------------------------------------------------------------------------


def env(name: str) -> str | None:
    """An environment variable's value, stripped; None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def require_env(cloud: str, *names: str) -> tuple[str, ...]:
    """The values of `names`; CredentialsError naming every missing variable (never a value)."""
    values = [env(name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if value is None]
    if missing:
        raise CredentialsError(f"no {cloud} credentials: set {' and '.join(missing)} in the environment")
    return tuple(v for v in values if v is not None)


def region_suffix(region: str) -> str:
    """`cn-north-4` -> `CN_NORTH_4`, the way the SDKs name per-region variables."""
    return region.replace("-", "_").upper()


def endpoint_override(variable: str, region: str) -> str | None:
    """The URL in `variable` with `{region}` filled in, or None when the variable is unset."""
    template = env(variable)
    if template is None:
        return None
    url = template.replace("{region}", region)
    if not re.match(r"^https?://[^/\s]+", url):
        raise UsageError(f"{variable}={template!r} is not a URL; give a full http(s):// URL "
                         "(a {region} placeholder is allowed)")
    return url.rstrip("/")


def split_url(url: str) -> tuple[str, str]:
    """`http://127.0.0.1:8080/` -> ("http", "127.0.0.1:8080")."""
    scheme, _, rest = url.partition("://")
    return scheme, rest.split("/", 1)[0]


# -- SDK errors ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SdkFailure:
    """What an adapter's SDK exception says, in the shape the shared mapping needs."""

    code: str
    message: str
    credentials: bool = False  # the cloud rejected the key, signature or project
    not_found: bool = False  # the resource named in the call does not exist


@dataclass(frozen=True)
class ErrorMapper:
    """Turns one SDK's exceptions into eulerpub errors. `inspect` returns None for exceptions it does not know."""

    cloud: str
    sdk_errors: tuple[type[BaseException], ...]
    inspect: Callable[[BaseException], SdkFailure | None]
    credential_hint: str  # what to check, e.g. "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"
    # Error codes the user can act on, each with the one sentence saying what to do (raised as UsageError).
    sentences: Mapping[str, str] = field(default_factory=dict)

    def failure(self, exc: BaseException) -> SdkFailure | None:
        return self.inspect(exc) if isinstance(exc, self.sdk_errors) else None

    def translate(self, exc: BaseException, region: str | None, operation: str,
                  resource_id: str | None = None) -> EulerpubError:
        failure = self.failure(exc)
        if failure is None:
            return CloudError(self.cloud, region, operation, f"{type(exc).__name__}: {exc}", resource_id)
        if failure.credentials:
            where = f" in {region}" if region else ""
            return CredentialsError(f"{self.cloud} rejected the credentials{where} while calling {operation} "
                                    f"({failure.code}: {failure.message}); check {self.credential_hint}")
        if failure.code in self.sentences:
            where = f"{self.cloud}/{region}" if region else self.cloud
            return UsageError(f"{where}: {operation} refused: {self.sentences[failure.code]} ({failure.code})")
        return CloudError(self.cloud, region, operation, f"{failure.code}: {failure.message}", resource_id)

    @contextmanager
    def errors(self, region: str | None, operation: str, resource_id: str | None = None) -> Iterator[None]:
        try:
            yield
        except EulerpubError:
            raise
        except self.sdk_errors as exc:
            raise self.translate(exc, region, operation, resource_id) from exc

    def call(self, region: str | None, operation: str, fn: Callable[..., T], *args: Any,
             resource_id: str | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` under the retry policy, failures translated."""
        with self.errors(region, operation, resource_id):
            return retry.call(fn, *args, **kwargs)

    def call_or_none(self, region: str | None, operation: str, fn: Callable[..., T], *args: Any,
                     resource_id: str | None = None, **kwargs: Any) -> T | None:
        """Like `call`, but None when the cloud says the resource does not exist."""
        try:
            return self.call(region, operation, fn, *args, resource_id=resource_id, **kwargs)
        except EulerpubError as exc:
            failure = self.failure(exc.__cause__) if exc.__cause__ else None
            if failure is not None and failure.not_found:
                return None
            raise


# -- the build marker and tags ------------------------------------------------------------------------------------

_MARKER = re.compile(r"\[eulerpub build ([0-9A-Za-z._-]+)\]")


def build_marker(build_id: str) -> str:
    return f"[eulerpub build {build_id}]"


def describe(spec: PublishSpec, limit: int) -> str:
    """The image description: the user's (or a default) plus the build marker, within the cloud's `limit`."""
    marker = build_marker(spec.identity.build_id)
    identity = spec.identity
    text = spec.description or f"openEuler {identity.release} {identity.arch} ({identity.profile})"
    room = limit - len(marker) - 1
    if room <= 0:
        return marker[:limit]
    return f"{text[:room]} {marker}"


def build_id_in(description: str | None) -> str | None:
    match = _MARKER.search(description or "")
    return match.group(1) if match else None


def effective_tags(tags: Mapping[str, str], description: str | None) -> dict[str, str]:
    """The image's tags, plus the build id and managed-by from the description marker when the tags lack them
    (an image copied by a cloud that drops tags is still recognised as this build's)."""
    merged = dict(tags)
    marked = build_id_in(description)
    if marked and TAG_BUILD_ID not in merged:
        merged[TAG_BUILD_ID] = marked
        merged.setdefault(TAG_MANAGED_BY, MANAGED_BY)
    return merged


def select_images(images: list[ImageRef], *, name: str | None, profile: str | None) -> list[ImageRef]:
    """The `list_images` contract over one region's images: with `name` every image of that name, else only
    eulerpub's (of `profile` if given); newest first."""
    if name is not None:
        chosen = [i for i in images if i.name == name]
    else:
        chosen = [i for i in images if i.tags.get(TAG_MANAGED_BY) == MANAGED_BY
                  and (profile is None or i.tags.get(TAG_PROFILE) == profile)]
    return sorted(chosen, key=lambda i: i.created, reverse=True)


def min_disk_gib(virtual_size: int, low: int, high: int) -> int:
    """The image's virtual size in whole GiB (rounded up), at least `low`; UsageError above `high`."""
    size = whole_gib(virtual_size)
    if size > high:
        raise UsageError(f"the image's virtual size is {size} GiB; the cloud accepts at most {high} GiB")
    return max(size, low)


# -- staging in S3-compatible object storage ---------------------------------------------------------------------


@dataclass
class ObjectStaging:
    """The disk's temporary home in OBS or COS, written by the one S3-compatible uploader.

    `endpoint_template` has a `{region}` placeholder; `endpoint_variable` overrides it (full URL, http allowed
    for tests). OBS and COS take no per-part SHA-256 (they verify Content-MD5, which each part carries) and reject
    boto3's default CRC headers; eulerpub's tags go
    on the object as metadata only.
    """

    cloud: str
    endpoint_template: str
    endpoint_variable: str
    credentials: boto.StaticCredentials | boto.CredentialSource = field(repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def endpoint(self, region: str) -> str:
        return endpoint_override(self.endpoint_variable, region) or self.endpoint_template.format(region=region)

    def settings(self, region: str) -> objectstore.StoreSettings:
        override = env(self.endpoint_variable) is not None
        return objectstore.StoreSettings(
            cloud=self.cloud, region=region, endpoint_url=self.endpoint(region),
            # The clouds' own endpoints want virtual-hosted buckets; an override (a test server, a proxy) is
            # left to botocore, which uses path style for an IP address.
            addressing_style="auto" if override else "virtual",
            checksum_sha256=False, content_md5=True, checksum_when_required=True, object_tags=False,
            credentials=self.credentials)

    def client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = objectstore.make_store_client(self.settings(region))
            return self._clients[region]

    def check_bucket(self, region: str, bucket: str) -> None:
        objectstore.check_bucket(self.client(region), self.settings(region), bucket)

    def upload(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        region, bucket = spec.source_region, _bucket(spec)
        image = spec.image
        stored = objectstore.upload_file(self.client(region), self.settings(region), bucket, spec.object_key,
                                         image.path, size=image.size, sha256=image.sha256, checkpoint=checkpoint,
                                         progress=progress, tags=spec.all_tags)
        return Upload(kind="object", id=stored.key, bucket=stored.bucket, sent_bytes=stored.sent_bytes)

    def discard(self, spec: PublishSpec, upload: Upload) -> None:
        if upload.kind != "object" or not upload.bucket:
            return
        region = spec.source_region
        objectstore.delete_object(self.client(region), self.settings(region), upload.bucket, upload.id)
        log.info("%s/%s: deleted the uploaded object %s/%s", self.cloud, region, upload.bucket, upload.id)

    def leftovers(self, region: str, bucket: str | None) -> list[Leftover]:
        """eulerpub's uploads in `bucket` (none without a bucket): the adapter's `list_leftovers`."""
        return objectstore.list_leftovers(self.client(region), self.settings(region), bucket) if bucket else []

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        if leftover.kind != "object" or not leftover.bucket:
            raise UsageError(f"{self.cloud} lists no {leftover.kind}s to delete ({leftover.id})")
        objectstore.delete_object(self.client(region), self.settings(region), leftover.bucket, leftover.id)


def _bucket(spec: PublishSpec) -> str:
    if not spec.bucket:
        raise UsageError(f"publishing to {spec.cloud} needs a bucket; pass --bucket")
    return spec.bucket
