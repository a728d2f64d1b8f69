#!/bin/bash
# eulerpub dmsetup shim for hosts without device-mapper: the kpartx shim made plain partition
# devices, so there are no nodes to make and no maps to remove.
set -eu
args=()
for a in "$@"; do case "$a" in --noudevsync|--verifyudev) ;; *) args+=("$a") ;; esac; done
case "${args[0]:-}" in
    mknodes) exit 0 ;;
    remove) rm -f "/dev/mapper/${args[1]:-none}"; exit 0 ;;
    *) echo "dmsetup shim: device-mapper is not available on this host" >&2; exit 1 ;;
esac
