"""The release index `releases/index.json`: every image eulerpub published, for consumers to read.

Schema (version 1; a change that breaks readers bumps `schema_version`):

    {
      "schema_version": 1,
      "updated": "2025-06-01T04:12:09+00:00",      # when an entry last changed (ISO 8601, UTC)
      "images": {
        "<profile>": {"<release>": {"<arch>": {"<cloud>": {"<region>": {
          "image_id": "ami-0123456789abcdef0",       # launch this
          "name": "openEuler-24.03-LTS-SP1-x86_64-hpc-20250601",
          "created": "2025-06-01T03:58:41+00:00",    # when the cloud created the image
          "build_id": "9f2c…",                       # the build record's id (same image on every cloud)
          "artifact_sha256": "ab12…"                 # sha256 of the disk file uploaded to this cloud
        }}}}}
      },
      "latest": [                                    # one per series: the same entries, flat, for filters
        {"profile": "hpcnow", "release": "24.03-LTS-SP1", "arch": "x86_64", "cloud": "huawei",
         "region": "cn-north-4", "image_id": "…", "name": "…", "created": "…"}
      ]
    }

Each `images` entry is the latest image of its series (profile, release, arch, cloud, region): a run replaces it
with the image it published, and merging parallel runs keeps the one created later. `latest` lists exactly those
entries, sorted by profile, release, arch, cloud, region; it is derived from `images` on every write (a value
read from a file is ignored), so the two never disagree. `jq -r '.latest[] | select(.profile == "hpcnow" and
.cloud == "huawei" and .region == "cn-north-4") | .image_id'` or `eulerpub images latest --index` read it.

A run updates the entries of the cells it published and never drops any other entry, so a filtered run
(`--only cloud=aws`) leaves the other clouds' entries as they were. Written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from eulerpub.errors import UsageError
from eulerpub.jsonfile import write_json_atomic
from eulerpub.release.runner import CellResult

SCHEMA_VERSION = 1
INDEX_NAME = "index.json"
DEFAULT_RELEASES_DIR = Path("releases")


class IndexEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image_id: str
    name: str
    created: str
    build_id: str
    artifact_sha256: str


# profile → release → arch → cloud → region → entry
Images = dict[str, dict[str, dict[str, dict[str, dict[str, IndexEntry]]]]]


class LatestEntry(BaseModel):
    """One series and its latest image, as the index's `latest` list holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str
    release: str
    arch: str
    cloud: str
    region: str
    image_id: str
    name: str
    created: str


class ReleaseIndex(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    updated: str = ""
    images: Images = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def latest(self) -> list[LatestEntry]:
        """Every series with its latest image, flat (derived from `images`)."""
        return [LatestEntry(profile=i.profile, release=i.release, arch=i.arch, cloud=i.cloud, region=i.region,
                            image_id=i.entry.image_id, name=i.entry.name, created=i.entry.created)
                for i in iter_entries(self)]


@dataclass(frozen=True)
class Located:
    """One index entry with its coordinates."""

    profile: str
    release: str
    arch: str
    cloud: str
    region: str
    entry: IndexEntry


def iter_entries(index: ReleaseIndex) -> Iterator[Located]:
    """Every entry, sorted by profile, release, arch, cloud, region."""
    for profile, releases in sorted(index.images.items()):
        for release, arches in sorted(releases.items()):
            for arch, clouds in sorted(arches.items()):
                for cloud, regions in sorted(clouds.items()):
                    for region, entry in sorted(regions.items()):
                        yield Located(profile, release, arch, cloud, region, entry)


def entries_from_results(results: Iterable[CellResult]) -> list[Located]:
    """The index entries a run's results provide: every image in place, even in a cell with a failed region."""
    found = []
    for result in results:
        if result.publish is None or result.build_id is None:
            continue
        cell = result.cell
        for image in result.publish.images:
            entry = IndexEntry(image_id=image.image_id, name=image.name, created=image.created,
                               build_id=result.build_id, artifact_sha256=result.publish.artifact_sha256)
            found.append(Located(cell.profile, cell.release, cell.arch, cell.cloud, image.region, entry))
    return found


def merge(index: ReleaseIndex, entries: Iterable[Located], *, now: datetime) -> ReleaseIndex:
    """A new index with `entries` set and every other entry kept (pure). `updated` moves only on a change."""
    images = {p: {r: {a: {c: dict(g) for c, g in cs.items()} for a, cs in arches.items()}
                  for r, arches in releases.items()} for p, releases in index.images.items()}
    for item in entries:
        regions = (images.setdefault(item.profile, {}).setdefault(item.release, {})
                   .setdefault(item.arch, {}).setdefault(item.cloud, {}))
        regions[item.region] = item.entry
    if images == index.images:
        return index
    return ReleaseIndex(updated=now.astimezone(UTC).isoformat(timespec="seconds"), images=images)


def parse_created(text: str) -> datetime | None:
    """A cloud's creation time (`2025-06-01T03:58:41.000Z`, `2025-06-01 03:58:41`, ...) in UTC, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def combine(index: ReleaseIndex, others: Iterable[ReleaseIndex], *, now: datetime) -> ReleaseIndex:
    """Fold the indexes of parallel release jobs (one per cloud, each started from the same index) into
    `index` (pure): where two disagree about a cloud region, the image created later is current."""
    chosen = {(i.profile, i.release, i.arch, i.cloud, i.region): i for i in iter_entries(index)}
    for other in others:
        for item in iter_entries(other):
            where = (item.profile, item.release, item.arch, item.cloud, item.region)
            held = chosen.get(where)
            if held is None or _newer(item.entry, held.entry):
                chosen[where] = item
    return merge(index, chosen.values(), now=now)


def _newer(candidate: IndexEntry, held: IndexEntry) -> bool:
    new, old = parse_created(candidate.created), parse_created(held.created)
    if new is None or old is None:
        return candidate != held and old is None and new is not None
    return new > old


def current_image_ids(index: ReleaseIndex, cloud: str, region: str) -> set[str]:
    """The image ids the index marks as current in one cloud region (prune never deletes these)."""
    return {item.entry.image_id for item in iter_entries(index) if item.cloud == cloud and item.region == region}


def read_index(path: Path) -> ReleaseIndex:
    """The index at `path`; an empty one when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ReleaseIndex()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc}); not a valid eulerpub release index") from None
    if isinstance(data, dict):
        data.pop("latest", None)  # derived from images on every write
    try:
        index = ReleaseIndex.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise UsageError(f"{path}: {where}: {error['msg']}; not a valid eulerpub release index") from None
    if index.schema_version > SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version {index.schema_version} is newer than this eulerpub reads "
                         f"({SCHEMA_VERSION}); upgrade eulerpub")
    return index


def write_index(path: Path, index: ReleaseIndex) -> None:
    write_json_atomic(path, index.model_dump(mode="json"))
