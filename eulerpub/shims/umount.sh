#!/bin/bash
# eulerpub umount shim (pair of the mount shim): a tmpfs whose mount source is a FAT block device is a
# staged ESP; its tree is copied into the FAT with mcopy, then it is unmounted. If the copy fails the
# tmpfs stays mounted and the exit status is 1, so the build fails instead of shipping an empty ESP.
set -eu
REAL=@REAL_UMOUNT@
target=""
for a in "$@"; do case "$a" in -*) ;; *) target=$a ;; esac; done
if [ -n "$target" ] && [ -d "$target" ]; then
    read -r fstype source < <(findmnt -n -o FSTYPE,SOURCE --mountpoint "$target" 2>/dev/null || true) || true
    if [ "${fstype:-}" = tmpfs ] && [ -b "${source:-}" ] \
            && [ "$(blkid -p -o value -s TYPE "$source" 2>/dev/null || true)" = vfat ]; then
        export MTOOLS_SKIP_CHECK=1
        shopt -s dotglob nullglob
        entries=("$target"/*)
        if [ ${#entries[@]} -gt 0 ] && ! mcopy -s -p -m -Q -D o -i "$source" "${entries[@]}" ::/; then
            echo "eulerpub umount shim: copying the staged ESP $target into $source failed" >&2
            exit 1
        fi
        echo "eulerpub umount shim: wrote the staged ESP $target into $source with mtools" >&2
    fi
fi
exec "$REAL" "$@"
