"""A build: profile + fetched official image -> diskimage-builder -> converted artifacts -> build record.

The steps are small functions over a `BuildPlan`:

    plan_build      resolve the target, fetch the base, hash the inputs into a build_id
    find_existing   a finished build with that id whose files are all present (reused unless --force)
    run_build       lock, tear down stale mounts, run DIB, convert, list packages, write the record

Everything happens in `<output>/<build_id>.partial/`; the record is written there last and the directory
is then renamed to `<output>/<build_id>/`, so a directory without `.partial` is always complete and a
failed or killed run leaves nothing that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eulerpub import __version__, bootmodes, convert, dib, hostenv, paths
from eulerpub.errors import EulerpubError, ToolError
from eulerpub.manifest import (
    RECORD_NAME,
    Artifact,
    BaseImage,
    BootLayout,
    BuildRecord,
    read_record,
    sha256_file,
    write_record,
)
from eulerpub.profiles import Profile

log = logging.getLogger(__name__)

# Bump when eulerpub changes what it feeds DIB or how it post-processes the output (part of build_id).
BUILD_LOGIC_VERSION = "1"
BUILD_ID_LENGTH = 16  # hex digits of the input hash used as the build directory name
MIN_FREE_BYTES = 20 * 1024**3  # chroot + raw image + conversions of a 12 GiB image, with margin
PACKAGE_LIST = "eulerpub-packages.tsv"  # written by the cloud-image-root element's finalise.d
SKIPPED_LIST = "eulerpub-skipped-packages"  # written by the openeuler element's package resolution


@dataclass(frozen=True)
class BaseInput:
    """The fetched official image (or its placeholder in a dry run)."""

    url: str
    sha256: str
    path: Path | None


@dataclass(frozen=True)
class BuildPlan:
    profile: Profile
    release: str
    arch: str
    base: BaseInput
    elements: list[str]
    elements_path: list[Path]
    elements_hash: str
    build_id: str
    output: Path
    image_name: str
    command: dib.DibCommand
    formats: list[str]
    inputs: dict[str, object] = field(default_factory=dict)

    @property
    def final_dir(self) -> Path:
        return self.output / self.build_id

    @property
    def partial_dir(self) -> Path:
        return self.output / f"{self.build_id}.partial"

    def describe(self) -> dict[str, object]:
        """The plan as data (for --dry-run and --json)."""
        return {
            "build_id": self.build_id,
            "profile": self.profile.name,
            "release": self.release,
            "arch": self.arch,
            "base": {"url": self.base.url, "sha256": self.base.sha256,
                     "path": str(self.base.path) if self.base.path else None},
            "elements": self.elements,
            "elements_path": [str(p) for p in self.elements_path],
            "elements_hash": self.elements_hash,
            "formats": self.formats,
            "directory": str(self.final_dir),
            "image_name": self.image_name,
            "boot": bootmodes.resolve_layout(self.profile.boot, self.arch),
            "dib": {"argv": self.command.argv, "env": self.command.env, "shell": self.command.shell()},
        }


@dataclass(frozen=True)
class BuildResult:
    record_path: Path
    record: BuildRecord
    reused: bool
    seconds: float = 0.0


def resolve_elements(profile: Profile, arch: str = "x86_64") -> list[str]:
    """The DIB element list: the base element, `vm` (we always make disk images), the block-device element of
    the boot layout (`bootmodes`), the profile's."""
    layout = bootmodes.resolve_layout(profile.boot, arch)
    ordered = [profile.base_element, "vm", bootmodes.layout_element(layout), *profile.elements]
    return list(dict.fromkeys(ordered))


def build_inputs(profile: Profile, release: str, arch: str, base_sha256: str, elements: list[str],
                 elements_hash: str) -> dict[str, object]:
    """Everything that decides the image's bytes, and nothing else (publish settings are left out)."""
    return {
        "base_sha256": base_sha256,
        "release": release,
        "arch": arch,
        "base_element": profile.base_element,
        "elements": elements,
        "packages": sorted(profile.packages),
        "optional_packages": sorted(profile.optional_packages),
        "image_mirror": profile.image_mirror,
        "env": dict(sorted(profile.env.items())),
        "image_size_gb": profile.image_size_gb,
        "formats": sorted(profile.formats),
        "elements_hash": elements_hash,
        "dib_version": dib.dib_version(),
        "build_logic": BUILD_LOGIC_VERSION,
    }


def compute_build_id(inputs: dict[str, object]) -> str:
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:BUILD_ID_LENGTH]


def dib_env(plan_env: dict[str, str], *, base_path: Path | None, base_sha256: str, release: str,
            mirror: str | None, elements_path: Sequence[Path], tmp_dir: Path) -> dict[str, str]:
    """The variables eulerpub sets for DIB; the profile's env comes last and wins."""
    env = {
        "ELEMENTS_PATH": os.pathsep.join(str(p) for p in elements_path),
        "DIB_LOCAL_IMAGE": str(base_path) if base_path else "<fetched base qcow2>",
        "DIB_EULER_BASE_SHA256": base_sha256,
        "DIB_RELEASE": release,
        "DIB_IMAGE_CACHE": str(paths.cache_dir() / "dib"),
        "TMP_DIR": str(tmp_dir),
    }
    if mirror:
        env["DIB_EULER_MIRROR"] = mirror.rstrip("/")
    env.update(plan_env)
    return env


def profile_env(profile: Profile) -> dict[str, str]:
    """The profile's settings the openeuler element reads: its packages (resolved before installing), the
    optional ones, and the mirror the published image's repositories name."""
    env = {"DIB_EULER_PROFILE_PACKAGES": " ".join(profile.packages),
           "DIB_EULER_OPTIONAL_PACKAGES": " ".join(profile.optional_packages)}
    if profile.image_mirror:
        env["DIB_EULER_IMAGE_MIRROR"] = profile.image_mirror
    return env


def plan_build(profile: Profile, *, release: str | None = None, arch: str | None = None,
               output: Path = paths.DEFAULT_BUILD_DIR, mirror: str | None = None,
               elements_dirs: Sequence[Path] = (), fetch: bool = True,
               fetcher: Callable[..., object] | None = None, trace: bool = False) -> BuildPlan:
    """Resolve what to build. With fetch=False (dry run) the base is named but not downloaded."""
    release, arch = profile.check_target(release, arch)
    elements = resolve_elements(profile, arch)
    search = dib.element_search_path(paths.elements_dir(), [Path(d).resolve() for d in elements_dirs])
    dib.check_elements(search, elements)
    elements_hash = dib.tree_hash(search)

    if fetch:
        if fetcher is None:
            from eulerpub.fetch import fetch_base as fetcher  # the fetch stage owns downloads and cache
        fetched = fetcher(release, arch, mirror=mirror)
        base = BaseInput(url=fetched.url, sha256=fetched.sha256, path=Path(fetched.path))
    else:
        base = _cached_base(release, arch, mirror)

    inputs = build_inputs(profile, release, arch, base.sha256, elements, elements_hash)
    build_id = compute_build_id(inputs) if base.path else "<known after fetching>"
    output = output.resolve()
    partial = output / f"{build_id}.partial"
    env = dib_env({**profile_env(profile), **profile.env}, base_path=base.path, base_sha256=base.sha256,
                  release=release, mirror=mirror,
                  elements_path=search, tmp_dir=partial / hostenv.DIB_TMP_MARKER)
    executable = _disk_image_create()
    command = dib.build_command(elements=elements, arch=arch, output_stem=partial / "dib" / "image",
                                image_size_gb=profile.image_size_gb, packages=profile.packages, env=env,
                                trace=trace, executable=executable)
    image_name = profile.image_name(release, arch, build_id=build_id)
    return BuildPlan(profile=profile, release=release, arch=arch, base=base, elements=elements,
                     elements_path=search, elements_hash=elements_hash, build_id=build_id, output=output,
                     image_name=image_name, command=command, formats=list(profile.formats), inputs=inputs)


def _cached_base(release: str, arch: str, mirror: str | None) -> BaseInput:
    """The base as a dry run sees it: the cached download if there is one, else just its URL."""
    from eulerpub.catalog import image_source
    from eulerpub.fetch import CacheLayout, find_cached

    url = image_source(release, arch, mirror).url
    hit = find_cached(CacheLayout(paths.cache_dir()), url)
    if hit:
        return BaseInput(url=url, sha256=hit.sha256, path=Path(hit.path))
    return BaseInput(url=url, sha256="<known after fetching>", path=None)


def _disk_image_create() -> str:
    found = hostenv._which("disk-image-create")
    return found or "disk-image-create"


def find_existing(plan: BuildPlan) -> tuple[Path, BuildRecord] | None:
    """A finished build of the same inputs whose artifacts are all present with their recorded sizes."""
    record_path = plan.final_dir / RECORD_NAME
    if not record_path.is_file():
        return None
    try:
        record = read_record(record_path)
    except EulerpubError:
        return None
    if record.build_id != plan.build_id:
        return None
    for artifact in record.artifacts:
        path = plan.final_dir / artifact.path
        if not path.is_file() or path.stat().st_size != artifact.size:
            log.warning("build %s is incomplete (%s missing or changed); rebuilding", plan.build_id, path.name)
            return None
    if set(plan.formats) - {a.format for a in record.artifacts}:
        return None
    return record_path, record


def run_build(plan: BuildPlan, *, force: bool = False,
              on_phase: Callable[[str], None] | None = None) -> BuildResult:
    """Build (or reuse) the image the plan describes and return its record."""
    if plan.base.path is None:
        raise EulerpubError("the plan has no fetched base image; plan it with fetch=True")
    if not force and (existing := find_existing(plan)):
        log.info("build %s already exists with all its artifacts; reusing it (--force rebuilds)", plan.build_id)
        return BuildResult(existing[0], existing[1], reused=True)

    plan.output.mkdir(parents=True, exist_ok=True)
    if hostenv.free_bytes(plan.output) < MIN_FREE_BYTES:
        raise EulerpubError(f"less than {MIN_FREE_BYTES // 1024**3} GiB free under {plan.output}; "
                            "free some space or pick another --build-dir")
    facts = hostenv.detect()
    if bootmodes.LAYOUT_ELEMENT["hybrid"] in plan.elements and facts.esp_method == "none":
        raise EulerpubError("this host can neither mount vfat nor write FAT with mtools, so it cannot build an "
                            "image with an ESP; install mtools, or build with `boot: bios`")
    started = time.monotonic()
    with hostenv.build_lock():
        hostenv.teardown_stale()
        _remove_tree(plan.partial_dir)
        plan.partial_dir.mkdir(parents=True)
        log_path = plan.partial_dir / "build.log"
        env = hostenv.dib_environment(facts, paths.cache_dir(), dib.inherited_environment(os.environ))
        env.update(plan.command.env)
        Path(env["TMP_DIR"]).mkdir(parents=True, exist_ok=True)
        final_log = plan.final_dir / "build.log"
        try:
            dib.run(plan.command, env, log_path, on_phase=on_phase)
        except ToolError as exc:
            hostenv.teardown_stale()
            missing = missing_packages_sentence(log_path)
            if missing:
                raise EulerpubError(f"{missing}; see {log_path}") from exc
            raise EulerpubError(f"disk-image-create failed ({exc.ended}); see its log: {log_path}",
                                hint="the last lines of the log name the failing element script") from exc
        finally:
            _remove_tree(Path(env["TMP_DIR"]))
        if on_phase:
            on_phase("converting")
        record = _finish(plan, log_path, final_log)
        _remove_tree(plan.partial_dir / "dib")
        write_record(plan.partial_dir, record)
        if plan.final_dir.exists():
            _remove_tree(plan.final_dir)
        plan.partial_dir.rename(plan.final_dir)
    seconds = time.monotonic() - started
    log.info("build %s finished in %.0f s", plan.build_id, seconds)
    return BuildResult(plan.final_dir / RECORD_NAME, record, reused=False, seconds=seconds)


def _finish(plan: BuildPlan, log_path: Path, final_log: Path) -> BuildRecord:
    """Convert DIB's raw image to every requested format, hash them, read the package list."""
    raw = plan.command.output_stem.with_suffix(".raw")
    if not raw.is_file():
        raise EulerpubError(f"disk-image-create reported success but wrote no {raw}; see {log_path}")
    dests = {fmt: plan.partial_dir / f"{plan.image_name}.{convert.EXTENSIONS[fmt]}" for fmt in plan.formats}
    log.info("writing %s", ", ".join(dest.name for dest in dests.values()))
    convert.convert_all(raw, {fmt: dest for fmt, dest in dests.items() if fmt != "raw"})  # concurrently
    if "raw" in dests:  # last: it is DIB's file, moved
        os.replace(raw, dests["raw"])
    made = {fmt: Artifact(format=fmt, path=dest.name, size=dest.stat().st_size,
                          virtual_size=convert.virtual_size(dest, fmt), sha256=sha256_file(dest))
            for fmt, dest in dests.items()}
    artifacts = [made[f] for f in plan.formats]
    with open(plan.partial_dir / made["raw"].path if "raw" in made else raw, "rb") as disk:
        table = bootmodes.parse_partition_table(disk.read(bootmodes.HEAD_BYTES))
    layout = bootmodes.resolve_layout(plan.profile.boot, plan.arch)
    manifests = plan.command.output_stem.parent / "image.d" / "dib-manifests"
    packages = read_package_list(manifests / PACKAGE_LIST)
    skipped = (manifests / SKIPPED_LIST).read_text().split() if (manifests / SKIPPED_LIST).is_file() else []
    for name in skipped:
        log.warning("optional package %s was skipped: no enabled repository has it", name)
    return BuildRecord(
        build_id=plan.build_id,
        profile=plan.profile.name,
        release=plan.release,
        arch=plan.arch,
        base=BaseImage(url=plan.base.url, sha256=plan.base.sha256),
        elements_hash=plan.elements_hash,
        elements=plan.elements,
        artifacts=artifacts,
        packages=packages,
        skipped_packages=sorted(skipped),
        image_name=plan.image_name,
        tool_versions={"eulerpub": __version__, "diskimage-builder": dib.dib_version(),
                       "qemu-img": _qemu_img_version()},
        log=final_log.name,
        checks=list(plan.profile.checks),
        inputs=plan.inputs,
        boot=BootLayout(layout=layout, modes=sorted(bootmodes.LAYOUT_MODES[layout]),
                        partition_table=table.to_json()),
    )


# The sentence the openeuler element's package resolution stops the build with (DIB prefixes log lines).
MISSING_PACKAGES = re.compile(r"openeuler: (\d+ requested package\(s\) are in none of the enabled "
                              r"repositories \([^)]*\): [^\n]*)")


def missing_packages_sentence(log_path: Path) -> str | None:
    """The package resolution's one sentence from a failed build's log, if that is why it failed."""
    try:
        found = MISSING_PACKAGES.findall(log_path.read_text(errors="replace"))
    except OSError:
        return None
    return found[-1].strip() if found else None


def read_package_list(path: Path) -> list[str]:
    """`name version arch` lines -> ["name-version.arch", ...] (sorted)."""
    if not path.is_file():
        raise EulerpubError(f"the build wrote no package list at {path}; is the cloud-image-root element "
                            "a dependency of the base element?")
    packages = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            name, version, arch = parts
            packages.append(f"{name}-{version}.{arch}")
    return sorted(packages)


def _qemu_img_version() -> str:
    from eulerpub import proc

    try:
        first = proc.output(["qemu-img", "--version"]).splitlines()[0]
    except (EulerpubError, IndexError):
        return "unknown"
    return first.split("version", 1)[-1].strip().split()[0]


def _remove_tree(path: Path) -> None:
    """rm -rf that refuses to cross into a still-mounted filesystem."""
    if not path.exists():
        return
    mounted = [m for m in hostenv.stale_mounts(marker=path.name) if m.startswith(str(path))]
    if mounted:
        raise EulerpubError(f"{mounted[0]} is still mounted; not deleting {path}")
    shutil.rmtree(path, ignore_errors=False)
