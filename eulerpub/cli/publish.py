"""`eulerpub publish`: make a build launchable on AWS, Huawei Cloud or Tencent Cloud, in many regions."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated

import typer

from eulerpub import catalog, tables, ui
from eulerpub.cli.cloud_options import Cloud
from eulerpub.cli.options import BuildDir, DryRun, Json, ProfilesDir, arch_option, choice, start
from eulerpub.clouds import get_adapter
from eulerpub.clouds.base import WaitParams
from eulerpub.clouds.rules import RULES
from eulerpub.errors import EulerpubError, UsageError
from eulerpub.paths import DEFAULT_BUILD_DIR
from eulerpub.profiles import CloudDefaults, Format, Profile, load_profile
from eulerpub.publish import (
    JournalStore,
    PublishOptions,
    PublishResult,
    Source,
    from_file,
    from_profile,
    from_record,
    make_spec,
    plan_steps,
    preflight,
    publish,
    render_table,
)
from eulerpub.publish.plan import PlannedStep, boot_line, boot_plan
from eulerpub.publish.source import PREFERRED_FORMATS

DEFAULT_WAIT_MINUTES = 180  # imports of large images and cross-region copies can take hours on a bad day
UPLOADS = ("ebs", "s3")
BOOT_MODES = ("uefi", "legacy-bios", "uefi-preferred")
FORMATS = typing.get_args(Format)
# The arches some cloud takes (clouds/rules.py); which cloud takes which is checked with the plan.
Arch = arch_option(tuple(dict.fromkeys(a for r in RULES.values() for a in r.arches)),
                   "Architecture of --image.")


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag {pair!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


def _resolve(cloud: str, profile_name: str | None, record: Path | None, image: Path | None, arch: str | None,
             release: str | None, fmt: str | None, build_dir: Path,
             profiles_dir: list[Path]) -> tuple[Source, Profile | None]:
    chosen = [flag for flag, value in (("--record", record), ("--image", image)) if value is not None]
    if len(chosen) > 1:
        raise UsageError("pass --record or --image, not both")
    if not chosen and profile_name is None:
        raise UsageError("say what to publish: --profile P (its newest build), --record PATH, or --image FILE --arch A")
    if image is None and arch is not None and record is not None:
        raise UsageError("--arch goes with --image; a build record already names its arch")
    profile = load_profile(profile_name, profiles_dir) if profile_name else None
    wanted = fmt or (profile.cloud(cloud).format if profile else None)  # type: ignore[arg-type]
    if image is not None:
        if arch is None:
            raise UsageError("--image needs --arch (x86_64 or aarch64)")
        return from_file(image, arch, build_dir=build_dir, release=release, profile=profile), profile
    if record is not None:
        source = from_record(record, cloud, wanted)  # type: ignore[arg-type]
    else:
        assert profile_name is not None
        source = from_profile(build_dir, profile_name, cloud, wanted, release=release)  # type: ignore[arg-type]
    if profile is None:
        try:
            profile = load_profile(source.identity.profile, profiles_dir)
        except UsageError:
            profile = None  # a record of a profile this checkout does not have: no defaults to apply
    return source, profile


PLAN_COLUMNS = ("STATE", "REGION", "STEP", "DETAIL")


def plan_table(steps: list[PlannedStep]) -> str:
    """The dry run's steps as the one table (tables.render), indented under the plan's heading lines."""
    rows = [("done" if s.done else "todo", s.region, s.step, s.detail) for s in steps]
    return "\n".join(f"  {line}" for line in tables.render(PLAN_COLUMNS, rows).splitlines())


def _print_result(result: PublishResult, json_output: bool) -> None:
    if json_output:
        ui.emit_json(result.to_json())
    else:
        print(render_table(result))


def _fail_if_incomplete(result: PublishResult) -> None:
    if result.ok:
        return
    source = result.regions[0]
    if source.status == "failed":
        raise EulerpubError(f"{source.error}; re-run the same command to resume")
    failed = [r.region for r in result.failed]
    raise EulerpubError(f"{len(failed)} of {len(result.regions)} regions failed ({', '.join(failed)}); re-run the "
                        "same command to finish only those")


def command(
    cloud: Cloud,
    region: Annotated[str | None, typer.Option("--region", help="Region to import into (default: the profile's "
                                               "first clouds.CLOUD.regions entry).")] = None,
    copy_to: Annotated[list[str] | None, typer.Option("--copy-to", help="Also copy the image to this region "
                                                      "(repeatable); copies run in parallel.",
                                                      metavar="REGION")] = None,
    share: Annotated[list[str] | None, typer.Option("--share", help="Account (AWS/Tencent) or project (Huawei) "
                                                    "to share with, in every region (repeatable); Huawei "
                                                    "project ids are per region: REGION:PROJECT_ID shares in "
                                                    "that region only.", metavar="ACCOUNT")] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Make the image public in every "
                                                "region (checked first: quota, block-public-access).",
                                                show_default=False)] = None,
    upload: Annotated[choice(UPLOADS) | None, typer.Option(  # type: ignore[valid-type]
        "--upload", help="AWS: ebs (default; EBS direct, no bucket) or s3 (S3 + VM Import, needs --bucket).",
        show_default=False)] = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Object storage bucket for the upload (S3, OBS, "
                                               "COS), in the source region.")] = None,
    boot_mode: Annotated[choice(BOOT_MODES) | None, typer.Option(  # type: ignore[valid-type]
        "--boot-mode", show_default=False, help="Default: what the boot test proved (uefi-preferred for both "
        "modes); for --image, what its partition table allows. Asking for an unproven mode is refused.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Image name (default: the profile's name template, "
                                             "openEuler-{release}-{arch}-{profile}-{date}).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Extra KEY=VALUE tag on every resource "
                                                  "(repeatable).", metavar="KEY=VALUE")] = None,
    keep_object: Annotated[bool, typer.Option("--keep-object", help="Keep the uploaded object after the "
                                              "import (it is deleted by default).")] = False,
    quick_import: Annotated[bool, typer.Option("--quick-import", help="Huawei: IMS fast import; refused, "
                                               "since it takes ZVHD2 or RAW with a qemu-img-hw bitmap, which "
                                               "eulerpub does not make.")] = False,
    agency: Annotated[str | None, typer.Option("--agency", help="Huawei: the IAM agency that lets IMS copy "
                                               "images across regions (needed with --copy-to; default: "
                                               "clouds.huawei.agency).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Publish the newest build of this "
                                                "profile under --build-dir (with --image: use its name "
                                                "template and cloud defaults).")] = None,
    record: Annotated[Path | None, typer.Option("--record", help="Publish the build this record "
                                                "(manifest.json or its directory) describes.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Publish this image file (qcow2, raw, vmdk, "
                                               "vhd) built elsewhere; needs --arch.")] = None,
    arch: Arch = None,
    release: Annotated[str | None, typer.Option("--release", "-r", help="openEuler release of --image (default: "
                                                "read from its file name), or of the --profile build.")] = None,
    fmt: Annotated[choice(FORMATS) | None, typer.Option(  # type: ignore[valid-type]
        "--format", show_default=False, help="Which artifact of the build to upload (default: the profile's, "
        "else the cloud's preferred); the cloud must import it.")] = None,
    build_dir: BuildDir = DEFAULT_BUILD_DIR,
    wait_minutes: Annotated[float, typer.Option("--wait-timeout", help="Minutes to wait for an import or a copy "
                                                "before giving up (a re-run keeps waiting).")]
    = DEFAULT_WAIT_MINUTES,
    poll_seconds: Annotated[float, typer.Option("--poll-interval", envvar="EULERPUB_POLL_INTERVAL", hidden=True,
                                                help="Seconds between status polls.")] = WaitParams.interval,
    profiles_dir: ProfilesDir = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Upload a build, import it, copy it to more regions and share it; resumable and idempotent.

    Each step is recorded in a journal beside the build (`publish/<cloud>/<region>.json`) as soon as it is
    done, and every resource is tagged with the build id, so a killed run resumes where it stopped and a
    re-run creates nothing new. Copy regions run in parallel; one failing region does not stop the others,
    the run exits 1 with a per-region table, and a re-run finishes only what is missing.

    Credentials come from each cloud's standard environment only (AWS: boto3's chain; Huawei:
    `HUAWEICLOUD_SDK_AK`/`SK` and `HUAWEICLOUD_SDK_PROJECT_ID_<REGION>` (or `HUAWEICLOUD_SDK_PROJECT_ID`);
    Tencent: `TENCENTCLOUD_SECRET_ID`/`KEY`), never from options.

    Examples:

    - `eulerpub publish --cloud aws --profile minimal --region us-east-1 --copy-to eu-west-1 --copy-to ap-southeast-1`
    - `eulerpub publish --cloud aws --record build/minimal-24.03/manifest.json --upload s3 --bucket my-images
      --share 123456789012 --json`
    - `eulerpub publish --cloud aws --image disk.qcow2 --arch aarch64 --release 24.03-LTS-SP1 --region eu-central-1`
    - `eulerpub publish --cloud huawei --profile minimal --region cn-north-4 --bucket my-obs-bucket --dry-run`
    """
    start(json_output)
    imported = PREFERRED_FORMATS.get(cloud, ())
    if fmt is not None and fmt not in imported:
        raise UsageError(f"--format {fmt}: {cloud} imports {', '.join(imported) or 'no format eulerpub makes'}")
    if wait_minutes <= 0 or poll_seconds <= 0:
        raise UsageError("--wait-timeout and the poll interval must be positive")
    source, loaded = _resolve(cloud, profile, record, image, arch, release, fmt, build_dir, profiles_dir or [])
    if image is not None:  # a --release (or one read from the file name) must be one the catalog knows
        catalog.find_release(source.identity.release)
    defaults = loaded.cloud(cloud) if loaded else CloudDefaults()  # type: ignore[arg-type]
    options = PublishOptions(
        region=region, copy_to=copy_to or (), share=share or (), public=public, upload=upload,  # type: ignore[arg-type]
        bucket=bucket, boot_mode=boot_mode, name=name, keep_object=keep_object,  # type: ignore[arg-type]
        quick_import=quick_import, agency=agency,
        tags=_tags(tag or []), wait=WaitParams(timeout=wait_minutes * 60, interval=poll_seconds))
    spec = make_spec(cloud, source, options, defaults)
    store = JournalStore(source.journal_dir)
    if dry_run:
        preflight(spec, get_adapter(cloud))  # read-only: what would fail late fails here, before the plan
        steps = plan_steps(spec, store.read_all(cloud, spec.regions))
        if json_output:
            ui.emit_json({"cloud": cloud, "name": spec.name, "build_id": spec.identity.build_id,
                          "journal_dir": str(store.root), "boot": boot_plan(source, spec),
                          "steps": [s.to_json() for s in steps]})
        else:
            print(f"{spec.name} ({cloud}, build {spec.identity.build_id}); journal {store.root}{os.sep}")
            print(f"  boot: {boot_line(source, spec)}")
            print(plan_table(steps))
        return
    result = publish(spec, get_adapter(cloud), store, byte_progress=ui.byte_progress)
    _print_result(result, json_output)
    _fail_if_incomplete(result)
