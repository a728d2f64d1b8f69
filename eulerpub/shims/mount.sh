#!/bin/bash
# eulerpub mount shim for hosts that cannot mount vfat: "mount DEV DIR" of a FAT device (the ESP
# diskimage-builder made) mounts a tmpfs on DIR whose mount source is DEV, so grub-install finds the
# FAT partition from mountinfo and probes it; the eulerpub umount shim copies DIR into the FAT with
# mcopy. Every other mount goes to the real mount. Installed by eulerpub.hostenv.
set -eu
REAL=@REAL_MOUNT@
fstype=""
positional=()
others=0
args=("$@")
i=0
while [ $i -lt ${#args[@]} ]; do
    a=${args[$i]}
    case "$a" in
        -t) fstype=${args[$((i + 1))]:-}; i=$((i + 2)); continue ;;
        -t*) fstype=${a#-t} ;;
        --types=*) fstype=${a#--types=} ;;
        -*) others=1 ;;
        *) positional+=("$a") ;;
    esac
    i=$((i + 1))
done
if [ "$others" -eq 0 ] && [ ${#positional[@]} -eq 2 ] && { [ -z "$fstype" ] || [ "$fstype" = vfat ]; } \
        && [ -b "${positional[0]}" ]; then
    dev=$(readlink -f "${positional[0]}")
    dir=${positional[1]}
    if [ "$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)" = vfat ]; then
        bytes=$(blockdev --getsize64 "$dev")
        exec "$REAL" -t tmpfs -o "size=${bytes},mode=0755" "$dev" "$dir"
    fi
fi
exec "$REAL" "$@"
