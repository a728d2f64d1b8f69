"""The shared base of the adapters that stage the disk in object storage, then have the cloud import it
(Huawei IMS from OBS, Tencent CVM from COS, Alibaba ECS from OSS).

What those adapters have in common lives here, once: the per-region client cache, the staging area in the
cloud's S3-compatible store (upload, discard, leftovers), `find_image` over the cloud's own "this build's images"
lookup, removing a failed import before a retry, and the mapping of a cloud's image states to eulerpub's.
A subclass supplies its cloud's API steps and three hooks: `_make_client(region)`, `_store_credentials()` and
`_this_build(region, build_id)`; it sets `name`, `store_endpoint` (with a `{region}` placeholder) and
`store_endpoint_variable` (the test/proxy override).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from eulerpub.clouds import boto, sdkutil
from eulerpub.clouds.base import (
    Checkpoint,
    ImageRef,
    ImageState,
    Imported,
    Leftover,
    LeftoverKind,
    PercentCallback,
    ProgressCallback,
    PublishSpec,
    Upload,
    pick_usable,
)
from eulerpub.clouds.wait import JobStatus, wait_for
from eulerpub.errors import UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")


def map_state(states: Mapping[str, ImageState], status: str | None) -> ImageState:
    """A cloud's image status as eulerpub's state; a status the table does not know is still being made."""
    return states.get(status or "", "pending")


def cloud_arch(names: Mapping[str, T], arch: str, title: str) -> T:
    """eulerpub's arch as the cloud's API names it (`names`); UsageError for one the cloud does not import."""
    try:
        return names[arch]
    except KeyError:
        raise UsageError(f"{title} does not import {arch} images; publish {' or '.join(names)}") from None


class StagedImportAdapter:
    """Object storage upload + cloud-side import. Clients are made per region on first use, thread safe."""

    name: ClassVar[str]
    leftover_kinds: tuple[LeftoverKind, ...] = ("object",)  # an imported image keeps no snapshot of the account
    store_endpoint: ClassVar[str]
    store_endpoint_variable: ClassVar[str]

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._staging: sdkutil.ObjectStaging | None = None

    # -- hooks ------------------------------------------------------------------------------------------------

    def _make_client(self, region: str) -> Any:
        raise NotImplementedError

    def _store_credentials(self) -> boto.StaticCredentials | boto.CredentialSource:
        """The object store's keys: a fixed pair, or a source read at every request (a chain that refreshes)."""
        raise NotImplementedError

    def _this_build(self, region: str, build_id: str) -> list[ImageRef]:
        """Every image of this build in `region`, failed ones included (by tag, or a fallback the cloud needs)."""
        raise NotImplementedError

    def delete_image(self, region: str, image_id: str) -> None:
        raise NotImplementedError

    def _image_status(self, region: str, image_id: str) -> JobStatus[ImageRef]:
        """One look at an image being made: done with the ImageRef, failed with the cloud's word, or running."""
        raise NotImplementedError

    # -- shared steps -----------------------------------------------------------------------------------------

    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._make_client(region)
            return self._clients[region]

    def _staging_area(self) -> sdkutil.ObjectStaging:
        with self._lock:
            if self._staging is None:
                self._staging = sdkutil.ObjectStaging(self.name, self.store_endpoint, self.store_endpoint_variable,
                                                      self._store_credentials())
            return self._staging

    def find_image(self, region: str, build_id: str) -> ImageRef | None:
        return pick_usable(self._this_build(region, build_id))

    def _remove_failed(self, region: str, build_id: str) -> None:
        """Delete this build's failed images in `region`, so a retried import or copy leaves one image behind
        (and a cloud that refuses a second image of the same name, failed or not, takes the retry)."""
        for image in self._this_build(region, build_id):
            if image.state == "failed":
                log.info("%s/%s: deleting failed image %s of an earlier attempt", self.name, region, image.image_id)
                self.delete_image(region, image.image_id)

    def _wait_image(self, spec: PublishSpec, region: str, image_id: str, what: str,
                    progress: PercentCallback) -> ImageRef:
        return wait_for(lambda: self._image_status(region, image_id), cloud=self.name, region=region, what=what,
                        resource_id=image_id, params=spec.wait, progress=progress)

    def wait_import(self, spec: PublishSpec, task_id: str, progress: PercentCallback) -> Imported:
        """Where the import's task id is the new image's id (CVM, ECS): wait for the image itself."""
        image = self._wait_image(spec, spec.source_region, task_id, "import", progress)
        return Imported(image_id=image.image_id)

    def wait_image(self, spec: PublishSpec, region: str, handle: str, progress: PercentCallback) -> ImageRef:
        return self._wait_image(spec, region, handle, "image", progress)

    def upload(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        return self._staging_area().upload(spec, checkpoint, progress)

    def discard_upload(self, spec: PublishSpec, upload: Upload) -> None:
        self._staging_area().discard(spec, upload)

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        return self._staging_area().leftovers(region, bucket)

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        self._staging_area().delete_leftover(region, leftover)
