"""The default `Steps`: the release runner connected to eulerpub's build, boot test and publish libraries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from eulerpub import bootcheck
from eulerpub.clouds import get_adapter
from eulerpub.clouds.base import CloudAdapter, WaitParams
from eulerpub.errors import UsageError
from eulerpub.manifest import artifact_path, latest_record
from eulerpub.profiles import Profile
from eulerpub.publish import JournalStore, PublishOptions, from_record, make_spec, publish
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.runner import BootTest, BuiltImage, PublishedImage, PublishOutcome, Slot, Steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Publisher:
    """Publishes a cell's build with the publish core: the cell's region, copies, shares, public flag and
    bucket replace the profile's (the matrix expansion already fell back to the profile for keys
    release.yaml leaves out); the profile's other `clouds.<cloud>` settings (upload method, boot mode,
    format, tags) apply as they are."""

    profiles: Mapping[str, Profile]
    adapter_for: Callable[[str], CloudAdapter] = get_adapter
    wait: WaitParams = field(default_factory=WaitParams)

    def __call__(self, cell: Cell, built: BuiltImage, upload_slot: Slot = nullcontext) -> PublishOutcome:
        defaults = self.profiles[cell.profile].cloud(cell.cloud)  # type: ignore[arg-type]
        defaults = defaults.model_copy(update={"regions": [cell.region], "copy_to": list(cell.copy_to),
                                               "share": list(cell.share), "public": cell.public,
                                               "bucket": cell.bucket, "agency": cell.agency})
        source = from_record(built.record_path, cell.cloud, defaults.format)
        spec = make_spec(cell.cloud, source, PublishOptions(wait=self.wait), defaults)
        result = publish(spec, self.adapter_for(cell.cloud), JournalStore(source.journal_dir),
                         upload_slot=upload_slot)
        images = [PublishedImage(r.region, r.image_id, result.name, r.created_at, r.created)
                  for r in result.regions if r.status == "done" and r.image_id is not None]
        failed = tuple((r.region, r.error or r.status) for r in result.failed)
        return PublishOutcome(source.image.sha256, tuple(images), failed)




@dataclass(frozen=True)
class Builder:
    """Builds with the build stage: the same plan, reuse and record as `eulerpub build`."""

    profiles: Mapping[str, Profile]
    build_dir: Path
    mirror: str | None = None
    elements_dirs: Sequence[Path] = ()

    def find(self, key: BuildKey) -> BuiltImage | None:
        """The finished build of the key's current inputs, if the base is cached and the build exists."""
        from eulerpub import build

        plan = build.plan_build(self.profiles[key.profile], release=key.release, arch=key.arch,
                                output=self.build_dir, mirror=self.mirror, elements_dirs=self.elements_dirs,
                                fetch=False)
        found = build.find_existing(plan) if plan.base.path is not None else None
        return BuiltImage(found[0], found[1], reused=True) if found else None

    def __call__(self, key: BuildKey) -> BuiltImage:
        from eulerpub import build

        plan = build.plan_build(self.profiles[key.profile], release=key.release, arch=key.arch,
                                output=self.build_dir, mirror=self.mirror, elements_dirs=self.elements_dirs)
        result = build.run_build(plan)
        return BuiltImage(result.record_path, result.record, reused=result.reused)


@dataclass(frozen=True)
class BootTester:
    """Boots the build's image under QEMU with the profile's checks; a pass is remembered beside the record."""

    profiles: Mapping[str, Profile]

    def __call__(self, built: BuiltImage) -> BootTest:
        record = built.record
        remembered = bootcheck.passed_before(built.record_path, record.build_id)
        if remembered:
            log.info("%s: boot test passed before (%s)", record.build_id, remembered)
            return BootTest(True, f"passed before ({remembered})")
        try:
            artifact = bootcheck.bootable_artifact(record)
        except UsageError as exc:
            return BootTest(False, exc.message)
        report = bootcheck.boot_test(artifact_path(built.record_path, artifact),
                                     checks=self.profiles[record.profile].checks, arch=record.arch)
        failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.passed]
        if report.passed:
            bootcheck.remember_pass(built.record_path, record, report)
        detail = "; ".join(failed) + (f" (console: {report.console_log})" if report.console_log else "")
        return BootTest(report.passed, detail)


@dataclass(frozen=True)
class ExistingBuilds:
    """Builds made elsewhere (a CI build job's artifacts, downloaded into `build_dir`): the newest record of each
    profile/release/arch is used and nothing is built."""

    build_dir: Path

    def find(self, key: BuildKey) -> BuiltImage | None:
        try:
            record_path, record = latest_record(self.build_dir, key.profile, release=key.release, arch=key.arch)
        except UsageError:
            return None
        return BuiltImage(record_path, record, reused=True)

    def refuse(self, key: BuildKey) -> BuiltImage:
        raise UsageError(f"no build of {key} under {self.build_dir} and building is off (--no-build); its build "
                         "or boot test failed, or its artifact was not downloaded")


def default_steps(profiles: Mapping[str, Profile], *, build_dir: Path, mirror: str | None = None,
                  elements_dirs: Sequence[Path] = (), build: bool = True, wait: WaitParams | None = None
                  ) -> Steps:
    """The real steps. Without `build`, only existing records under `build_dir` are used."""
    if build:
        builder = Builder(profiles, build_dir, mirror, tuple(elements_dirs))
        find, make = builder.find, builder
    else:
        existing = ExistingBuilds(build_dir)
        find, make = existing.find, existing.refuse
    return Steps(find_build=find, build=make, boot_test=BootTester(profiles),
                 publish=Publisher(profiles, wait=wait or WaitParams()))
