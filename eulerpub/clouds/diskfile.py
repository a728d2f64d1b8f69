"""Disk formats for upload: convert an image with qemu-img into what a cloud API takes, cached by content.

The converted file is keyed by the source's sha256 and written via temp file + rename, so a killed and
re-run publish reuses it (and resumes its upload) instead of converting and uploading a different file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from eulerpub import convert, imagefile, proc
from eulerpub.clouds.base import DiskImage
from eulerpub.paths import cache_dir
from eulerpub.profiles import Format

log = logging.getLogger(__name__)


def converted_path(image: DiskImage, target: Format) -> Path:
    return cache_dir() / "converted" / f"{image.sha256}.{target}"


def as_format(image: DiskImage, target: Format) -> Path:
    """`image` in `target` format: the file itself if it already is, else a cached conversion.

    The command line is the builds' (`convert.convert_argv`: streamOptimized VMDK in order, `-m`/`-W` where the
    output stays valid). Raw output is sparse (qemu-img skips zeros), so holes cost no disk and are skipped by
    the EBS uploader.
    The file is inspected as its declared format first, so neither the upload nor qemu-img reads a backing file,
    an external data file, or a header of another format.
    """
    imagefile.inspect(image.path, image.format)
    if image.format == target:
        return image.path
    out = converted_path(image, target)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    log.info("converting %s (%s) to %s", image.path.name, image.format, target)
    try:
        proc.run(convert.convert_argv(Path(imagefile.qemu_path(image.path)), tmp, target,
                                      source_format=image.format, force_share=True))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def discard_conversion(image: DiskImage, target: Format) -> None:
    """Remove a cached conversion once its upload is complete."""
    if image.format != target:
        converted_path(image, target).unlink(missing_ok=True)
