"""The newest image of a series (profile, release, arch in one cloud region): what `hpcopr init --os <id>` and
other consumers launch. Found in the cloud by eulerpub's tags, or in the release index.

Without a release, the newest image of any release; without an arch, the series must have one arch only (an
image for the other architecture is never what a caller meant by "newest").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from eulerpub.clouds.base import TAG_ARCH, TAG_PROFILE, TAG_RELEASE, CloudAdapter
from eulerpub.errors import UsageError
from eulerpub.release.index import ReleaseIndex, iter_entries, parse_created


@dataclass(frozen=True)
class Series:
    cloud: str
    region: str
    profile: str
    release: str | None = None
    arch: str | None = None

    def describe(self) -> str:
        parts = [f"profile {self.profile}", *([f"release {self.release}"] if self.release else []),
                 *([f"arch {self.arch}"] if self.arch else [])]
        return f"{', '.join(parts)} in {self.cloud}/{self.region}"


@dataclass(frozen=True)
class LatestImage:
    image_id: str
    name: str
    profile: str
    release: str
    arch: str
    cloud: str
    region: str
    created: str
    build_id: str | None
    source: Literal["cloud", "index"]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def from_cloud(adapter: CloudAdapter, series: Series) -> LatestImage | None:
    """The newest available image the cloud lists for the series (eulerpub's tags; failed or pending ones never)."""
    found = [LatestImage(image.image_id, image.name, image.tags.get(TAG_PROFILE, ""), image.tags.get(TAG_RELEASE, ""),
                         image.tags.get(TAG_ARCH, ""), series.cloud, series.region, image.created, image.build_id,
                         "cloud")
             for image in adapter.list_images(series.region, profile=series.profile) if image.state == "available"]
    return newest(found, series)


def from_index(index: ReleaseIndex, series: Series) -> LatestImage | None:
    """The index's entry for the series (each entry is its series' latest image)."""
    found = [LatestImage(item.entry.image_id, item.entry.name, item.profile, item.release, item.arch, item.cloud,
                         item.region, item.entry.created, item.entry.build_id, "index")
             for item in iter_entries(index) if (item.cloud, item.region) == (series.cloud, series.region)]
    return newest(found, series)


def newest(images: Iterable[LatestImage], series: Series) -> LatestImage | None:
    """The series' image created last; UsageError when no arch was given and the series has several."""
    matching = [i for i in images if i.profile == series.profile
                and (series.release is None or i.release == series.release)
                and (series.arch is None or i.arch == series.arch)]
    arches = sorted({i.arch for i in matching})
    if series.arch is None and len(arches) > 1:
        raise UsageError(f"{series.describe()} has images for {' and '.join(arches)}; pass --arch")
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(matching, key=lambda i: (parse_created(i.created) or oldest, i.image_id), default=None)
