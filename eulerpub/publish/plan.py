"""The plan: options merged with profile defaults into a `PublishSpec`, and the steps a run would take.

Both are pure functions of their inputs (no cloud calls), so `--dry-run` prints exactly what the runner
will attempt, given what the journals say is already done.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eulerpub import bootmodes
from eulerpub.clouds import rules
from eulerpub.clouds.base import BootMode, PublishSpec, UploadMethod, WaitParams
from eulerpub.errors import UsageError
from eulerpub.profiles import CloudDefaults
from eulerpub.publish.journal import RegionJournal
from eulerpub.publish.source import Source

DEFAULT_UPLOAD: UploadMethod = "ebs"  # no bucket and no vmimport role needed, and zero blocks are never sent


@dataclass(frozen=True)
class PublishOptions:
    """The publish options as given on the command line; None (or empty) means "take the profile's"."""

    region: str | None = None
    copy_to: Sequence[str] = ()
    share: Sequence[str] = ()
    public: bool | None = None
    upload: UploadMethod | None = None
    bucket: str | None = None
    boot_mode: BootMode | None = None
    name: str | None = None
    keep_object: bool = False
    quick_import: bool = False
    agency: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    wait: WaitParams = field(default_factory=WaitParams)


def make_spec(cloud: str, source: Source, options: PublishOptions,
              defaults: CloudDefaults | None = None) -> PublishSpec:
    """Merge the command line over the profile's cloud defaults; check what can be checked offline."""
    defaults = defaults or CloudDefaults()
    region = options.region or (defaults.regions[0] if defaults.regions else None)
    if not region:
        raise UsageError(f"no region to publish to; pass --region or set clouds.{cloud}.regions in the profile")
    copy_to = list(options.copy_to) or [*defaults.regions[1:], *defaults.copy_to]
    regions = _unique([region, *copy_to])
    for each in regions:
        rules.check_region(cloud, each)
    name = options.name or source.name
    rules.check_image_name(cloud, name)
    rules.check_arch(cloud, source.identity.arch)
    share_with = _unique([*options.share] or defaults.share)
    for target in share_with:
        rules.check_share(cloud, target)
    if not (math.isfinite(options.wait.timeout) and options.wait.timeout > 0
            and math.isfinite(options.wait.interval) and options.wait.interval > 0):
        raise UsageError("--wait-timeout and the poll interval must be finite and positive")
    upload = options.upload or defaults.upload
    if cloud == "aws":
        upload = upload or DEFAULT_UPLOAD
    elif upload == "ebs":
        raise UsageError(f"--upload ebs is AWS only; {cloud} imports from its object storage")
    bucket = options.bucket or defaults.bucket
    if options.quick_import and cloud != "huawei":
        raise UsageError("--quick-import is Huawei Cloud only (IMS fast import of a raw image)")
    agency = options.agency or defaults.agency
    if options.agency and cloud != "huawei":
        raise UsageError("--agency is Huawei Cloud only (the IAM agency IMS copies images across regions with)")
    if (cloud != "aws" or upload == "s3") and not bucket:
        raise UsageError(f"publishing to {cloud} through object storage needs a bucket; pass --bucket or set "
                         f"clouds.{cloud}.bucket in the profile")
    return PublishSpec(
        cloud=cloud,
        image=source.image,
        identity=source.identity,
        name=name,
        source_region=regions[0],
        copy_to=tuple(regions[1:]),
        share_with=tuple(share_with),
        public=options.public if options.public is not None else defaults.public,
        tags={**defaults.tags, **options.tags},
        upload=upload,
        bucket=bucket,
        boot_mode=boot_mode_for(source, options.boot_mode or defaults.boot_mode),
        keep_object=options.keep_object,
        quick_import=options.quick_import,
        agency=agency if cloud == "huawei" else None,
        wait=options.wait,
    )


def boot_mode_for(source: Source, requested: BootMode | None) -> BootMode | None:
    """Register only what is proven: the source's boot evidence decides (`bootmodes.decide`)."""
    if source.boot is None:
        return requested
    what = f"build {source.identity.build_id}" if source.record_path else source.image.path.name
    return bootmodes.decide(requested, source.boot, what=what, arch=source.identity.arch)


def boot_plan(source: Source, spec: PublishSpec) -> dict[str, Any]:
    """What was found about how the source boots, and what this cloud will be told (for --dry-run --json)."""
    found = source.boot.to_json() if source.boot else None
    told = bootmodes.cloud_summary(spec.boot_mode)[spec.cloud] if spec.boot_mode else None
    return {"found": found, "boot_mode": spec.boot_mode, "register": told}


def boot_line(source: Source, spec: PublishSpec) -> str:
    """The plan's one line on boot modes: what is proven, how, and what the cloud is told."""
    told = bootmodes.cloud_summary(spec.boot_mode)[spec.cloud] if spec.boot_mode else "the cloud's default"
    if source.boot is None:
        return f"registered as {told}"
    proven = " and ".join(m.upper() for m in sorted(source.boot.modes)) or "no mode"
    return f"{proven} ({source.boot.basis}: {source.boot.detail}) -> registered as {told}"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class PlannedStep:
    region: str
    step: str
    detail: str
    done: bool

    def to_json(self) -> dict[str, Any]:
        return {"region": self.region, "step": self.step, "detail": self.detail, "done": self.done}


def plan_steps(spec: PublishSpec, journals: Mapping[str, RegionJournal | None]) -> list[PlannedStep]:
    """The steps a run takes, each marked done when its region's journal says so (the run re-checks)."""
    steps: list[PlannedStep] = []
    source = journals.get(spec.source_region)

    def done(journal: RegionJournal | None, step: str) -> bool:
        return bool(journal and journal.done(step))  # type: ignore[arg-type]

    image = spec.image
    where = f"{spec.bucket}/{spec.object_key}" if spec.upload != "ebs" else "an EBS snapshot (direct)"
    steps.append(PlannedStep(spec.source_region, "upload",
                             f"{image.path.name} ({image.format}, {image.size} bytes) to {where}",
                             done(source, "upload") or done(source, "register")))
    steps.append(PlannedStep(spec.source_region, "import", f"import as {spec.identity.arch}",
                             done(source, "import") or done(source, "register")))
    boot = f", boot mode {bootmodes.cloud_summary(spec.boot_mode)[spec.cloud]}" if spec.boot_mode else ""
    steps.append(PlannedStep(spec.source_region, "register", f"image {spec.name}{boot}", done(source, "register")))
    if spec.upload != "ebs" and not spec.keep_object:
        steps.append(PlannedStep(spec.source_region, "cleanup", f"delete {spec.object_key} after the import",
                                 done(source, "cleanup")))
    for region in spec.copy_to:
        steps.append(PlannedStep(region, "copy", f"copy from {spec.source_region}", done(journals.get(region), "copy")))
    grants = [*spec.share_with, *(["public"] if spec.public else [])]
    if grants:
        for region in spec.regions:
            journal = journals.get(region)
            shared = bool(journal and set(grants) <= set(journal.shares))
            steps.append(PlannedStep(region, "share", f"launch permission for {', '.join(grants)}", shared))
    return steps
