#!/bin/bash
# Build a small Debian bookworm disk laid out like the official openEuler qcow2:
# MBR label, p1 FAT16 mounted at /boot, p2 ext4 labelled "rootfs", fstab by UUID. The FAT /boot holds what the
# official one holds besides the kernel: grub2/ (grub.cfg, grubenv) and the EFI tree, efi/EFI/openEuler/ with a
# grub EFI binary whose prefix is (,msdos1)/efi/EFI/openEuler (as openEuler's recipe builds it) and its copy at
# efi/BOOT/BOOT<ARCH>.EFI. /etc/default/grub is the official one (tests/openeuler-root/24.03-LTS-SP1).
# Nothing is mounted: debootstrap into a directory, then mkfs.ext4 -d, mkfs.vfat + mcopy,
# sfdisk and dd assemble the disk, qemu-img and xz finish it.
#
# usage: build-standin.sh OUTDIR VERSION ARCH
# writes OUTDIR/openEuler-VERSION-ARCH.qcow2.xz and OUTDIR/openEuler-VERSION-ARCH.qcow2.xz.sha256sum

if [ "${DIB_DEBUG_TRACE:-0}" -gt 0 ]; then
    set -x
fi
set -eu
set -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
GRUB_DEFAULTS=$HERE/../openeuler-root/24.03-LTS-SP1/etc/default/grub
OUTDIR=${1:?usage: build-standin.sh OUTDIR VERSION ARCH}
VERSION=${2:?usage: build-standin.sh OUTDIR VERSION ARCH}
ARCH=${3:?usage: build-standin.sh OUTDIR VERSION ARCH}

MIRROR=${STANDIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${STANDIN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
BOOT_MB=160           # p1: FAT16 needs at least ~16 MiB; the official image gives /boot ~5% of the disk
ROOT_SPARE_MB=512     # free space left in the ext4 root beyond its content
case "$ARCH" in
    x86_64) DEB_ARCH=amd64 GRUB_EFI=x86_64-efi EFI_NAME=grubx64.efi REMOVABLE=BOOTX64.EFI ;;
    aarch64) DEB_ARCH=arm64 GRUB_EFI=arm64-efi EFI_NAME=grubaa64.efi REMOVABLE=BOOTAA64.EFI ;;
    *) echo "build-standin: unsupported arch $ARCH" >&2; exit 2 ;;
esac

WORK=$(mktemp -d "${TMP_DIR:-/var/tmp}/standin.XXXXXX")
cleanup() {
    for fs in proc sys dev/pts dev; do
        if mountpoint -q "$WORK/root/$fs" 2>/dev/null; then umount -l "$WORK/root/$fs" || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
ROOT=$WORK/root

echo "standin: debootstrap $SUITE ($DEB_ARCH) from $MIRROR"
debootstrap --arch="$DEB_ARCH" --variant=minbase \
    --include=linux-image-"$DEB_ARCH",initramfs-tools,systemd-sysv,udev,kmod,dbus,ifupdown,isc-dhcp-client,iproute2,openssh-server,sudo,ca-certificates,e2fsprogs,gnupg,procps,less,locales,grub-efi-$DEB_ARCH-bin \
    "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -40 "$WORK/debootstrap.log" >&2
    exit 1
}

# Like the official image: a published root password (the build must lock it).
echo 'root:openEuler12#$' | chroot "$ROOT" chpasswd

cat >"$ROOT/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
echo "openeuler-standin" >"$ROOT/etc/hostname"
printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' >"$ROOT/etc/network/interfaces"
# The official grub defaults, kernel command line included (the hpc profile drops softlockup_panic=1 only).
install -m 0644 "$GRUB_DEFAULTS" "$ROOT/etc/default/grub"
# The official /boot's EFI tree: openEuler builds its grub EFI binary with the prefix of its MBR layout, which
# is wrong on any other layout, so cloud-image-root must drop it when the new image has an ESP. Built with
# Debian's grub modules, which then leave the root (DIB installs the bootloader the layout needs).
mkdir -p "$ROOT/boot/efi/EFI/openEuler" "$ROOT/boot/efi/BOOT" "$ROOT/boot/grub2"
chroot "$ROOT" grub-mkimage -O "$GRUB_EFI" -p '(,msdos1)/efi/EFI/openEuler' \
    -o "/boot/efi/EFI/openEuler/$EFI_NAME" part_msdos fat ext2 normal configfile search linux
cp "$ROOT/boot/efi/EFI/openEuler/$EFI_NAME" "$ROOT/boot/efi/BOOT/$REMOVABLE"
chroot "$ROOT" dpkg --purge "grub-efi-$DEB_ARCH-bin" >/dev/null
# Stand-ins for grub2-mkconfig's output (the kernel is found by the configs DIB writes, not these).
for cfg in "$ROOT/boot/grub2/grub.cfg" "$ROOT/boot/efi/EFI/openEuler/grub.cfg"; do
    cat >"$cfg" <<'GRUBCFG'
# stand-in for the grub.cfg of the official image (grub2-mkconfig output), MBR layout
set default=saved
search --no-floppy --fs-uuid --set=root --hint='hd0,msdos1' BOOT_UUID
GRUBCFG
done
{ printf '# GRUB Environment Block\nsaved_entry=0\n'; head -c 1024 /dev/zero; } | head -c 1024 | tr '\0' '#' \
    >"$ROOT/boot/grub2/grubenv"
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log

ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
BOOT_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ' | tr 'a-f' 'A-F')
BOOT_UUID="${BOOT_ID:0:4}-${BOOT_ID:4:4}"
sed -i "s/BOOT_UUID/$BOOT_UUID/" "$ROOT/boot/grub2/grub.cfg" "$ROOT/boot/efi/EFI/openEuler/grub.cfg"
cat >"$ROOT/etc/fstab" <<FSTAB
UUID=$ROOT_UUID / ext4 defaults 1 1
UUID=$BOOT_UUID /boot vfat defaults,umask=0077 0 2
FSTAB

# /boot goes to the FAT partition; keep an empty mount point in the root.
mkdir "$WORK/bootfiles"
mv "$ROOT"/boot/* "$WORK/bootfiles/"

ROOT_MB=$(( $(du -sm --apparent-size "$ROOT" | cut -f1) * 12 / 10 + ROOT_SPARE_MB ))
truncate -s "${ROOT_MB}M" "$WORK/root.ext4"
mkfs.ext4 -q -L rootfs -U "$ROOT_UUID" -d "$ROOT" "$WORK/root.ext4"

truncate -s "${BOOT_MB}M" "$WORK/boot.vfat"
mkfs.vfat -F 16 -i "$BOOT_ID" "$WORK/boot.vfat" >/dev/null
mcopy -s -p -i "$WORK/boot.vfat" "$WORK"/bootfiles/* ::/

# MBR: 1 MiB alignment, p1 FAT16 (type 0x0e), p2 Linux.
DISK=$WORK/disk.raw
truncate -s "$(( 1 + BOOT_MB + ROOT_MB ))M" "$DISK"
sfdisk -q "$DISK" <<PARTS
label: dos
start=1MiB, size=${BOOT_MB}MiB, type=e, bootable
start=$(( 1 + BOOT_MB ))MiB, size=${ROOT_MB}MiB, type=83
PARTS
dd if="$WORK/boot.vfat" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$DISK" bs=1M seek=$(( 1 + BOOT_MB )) conv=notrunc,sparse status=none

NAME=openEuler-$VERSION-$ARCH.qcow2
mkdir -p "$OUTDIR"
qemu-img convert -f raw -O qcow2 "$DISK" "$WORK/$NAME"
xz -T0 -3 -c "$WORK/$NAME" >"$OUTDIR/$NAME.xz.tmp"
mv "$OUTDIR/$NAME.xz.tmp" "$OUTDIR/$NAME.xz"
(cd "$OUTDIR" && sha256sum "$NAME.xz" >"$NAME.xz.sha256sum")
echo "standin: wrote $OUTDIR/$NAME.xz"
