#!/bin/bash
# eulerpub sudo shim: run the command as root with sudo's environment reset, but keep the shim
# directory first on PATH (real sudo's secure_path would drop it). Installed by eulerpub.hostenv.
set -eu
SHIM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
preserve=0
while [ $# -gt 0 ]; do
    case "$1" in
        -E|--preserve-env) preserve=1; shift ;;
        --preserve-env=*) preserve=1; shift ;;
        -n|-H|-S|-k|--non-interactive) shift ;;
        -u) if [ "$2" != root ]; then exec @REAL_SUDO@ "$@"; fi; shift 2 ;;
        --) shift; break ;;
        -*) exec @REAL_SUDO@ "$@" ;;
        *) break ;;
    esac
done
NEW_PATH="$SHIM_DIR:@SECURE_PATH@"
if [ "$(id -u)" -ne 0 ]; then
    if [ "$preserve" -eq 1 ]; then exec @REAL_SUDO@ -E env PATH="$NEW_PATH" "$@"; fi
    exec @REAL_SUDO@ env PATH="$NEW_PATH" "$@"
fi
if [ "$preserve" -eq 1 ]; then
    exec env PATH="$NEW_PATH" "$@"
fi
exec env -i PATH="$NEW_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
    TERM="${TERM:-dumb}" LANG="${LANG:-C.UTF-8}" SUDO_USER="${USER:-root}" SUDO_UID="$(id -u)" \
    SUDO_GID="$(id -g)" SUDO_COMMAND="$*" "$@"
