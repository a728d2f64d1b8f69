#!/bin/bash
# eulerpub kpartx shim for hosts without device-mapper: partx creates /dev/loopNpM (devtmpfs),
# and /dev/mapper/loopNpM symlinks give diskimage-builder the names it expects. -d removes both.
set -eu
mode=""
verbose=0
while getopts "avusdlfgp:" opt; do
    case "$opt" in
        a|u) mode=add ;;
        d) mode=delete ;;
        l) mode=list ;;
        v) verbose=1 ;;
        s|f|g|p) ;;
        *) echo "kpartx shim: unsupported option" >&2; exit 1 ;;
    esac
done
shift $((OPTIND - 1))
target=${1:?kpartx shim: no device given}
if [ -b "$target" ]; then
    dev=$target
elif [ "$mode" = add ]; then
    dev=$(losetup -f --show "$target")
else
    dev=$(losetup -j "$target" -O NAME -n | head -n1)
    [ -n "$dev" ] || exit 0
fi
base=$(basename "$dev")
case "$mode" in
    add)
        # Partitions the kernel still lists for this device belong to an image it held before (a partition that
        # was busy when that image was unmapped outlives losetup -d): the new image's overlapping ones could not
        # be added. They are dropped first; any still busy make the check below fail.
        for sys in /sys/class/block/"$base"/"$base"p*; do
            [ -e "$sys" ] || continue
            part=$(basename "$sys")
            partx -d --nr "${part##*p}" "$dev" 2>/dev/null || true
            rm -f "/dev/mapper/$part"
        done
        partx -a "$dev" 2>/dev/null || partx -u "$dev"
        for nr in $(partx -g -o NR "$dev"); do
            if [ ! -e "/sys/class/block/$base/${base}p$nr" ]; then
                echo "kpartx shim: $dev has no partition $nr after partx -a (an old partition of $dev still busy?)" >&2
                exit 1
            fi
        done
        mkdir -p /dev/mapper
        for sys in /sys/class/block/"$base"/"$base"p*; do
            [ -e "$sys" ] || continue
            part=$(basename "$sys")
            for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b "/dev/$part" ] && break; sleep 0.2; done
            if [ ! -b "/dev/$part" ]; then
                IFS=: read -r major minor <"$sys/dev"
                mknod "/dev/$part" b "$major" "$minor"
            fi
            ln -sfn "/dev/$part" "/dev/mapper/$part"
            [ "$verbose" -eq 0 ] || echo "add map $part (0:0): 0 $(cat "$sys/size") linear $dev $(cat "$sys/start")"
        done
        ;;
    delete)
        rm -f /dev/mapper/"$base"p*
        # A partition is busy for a moment after its filesystem is unmounted: retry, and say so if it stays.
        for _ in $(seq 1 20); do
            partx -d "$dev" 2>/dev/null || true
            left=$(find /sys/class/block/"$base"/ -maxdepth 1 -name "${base}p*" -printf '%f ')
            [ -n "$left" ] || break
            sleep 0.5
        done
        [ -z "$left" ] || echo "kpartx shim: ${left% } still busy on $dev, not removed" >&2
        if [ ! -b "$target" ]; then losetup -d "$dev"; fi
        ;;
    list)
        for sys in /sys/class/block/"$base"/"$base"p*; do
            [ -e "$sys" ] && echo "$(basename "$sys") : 0 $(cat "$sys/size") $dev $(cat "$sys/start")"
        done
        ;;
    *) echo "kpartx shim: give -a, -u, -d or -l" >&2; exit 1 ;;
esac
