#!/usr/bin/env bash
# Install the Debian packages eulerpub's build, boot-test and lint stages need.
# Idempotent: packages already present are skipped, apt runs only when something is missing.
set -euo pipefail

PACKAGES=(
  # diskimage-builder and image handling
  qemu-utils debootstrap gdisk kpartx sudo util-linux e2fsprogs dosfstools mtools fdisk
  xz-utils squashfs-tools gnupg debian-archive-keyring curl wget procps rsync
  # boot tests (ovmf: x86_64 UEFI firmware, so hybrid images are booted under BIOS and UEFI)
  qemu-system-x86 ovmf cloud-image-utils genisoimage openssh-client
  # the desktop boot check: an RDP client under a virtual X server, frame capture, OCR of the frames
  freerdp2-x11 xvfb imagemagick tesseract-ocr
  # the hpcnow boot check (root password login through sshpass) and its tests (sshd -T on sshd_config files)
  sshpass openssh-server
  # lint
  shellcheck
)
# aarch64 hosts (native arm64 runners) boot-test aarch64 images: QEMU for arm and its UEFI firmware.
if [ "$(uname -m)" = "aarch64" ]; then
  PACKAGES+=(qemu-system-arm qemu-efi-aarch64)
elif [ "${EULERPUB_CROSS_ARM:-0}" = "1" ]; then
  # x86 hosts cross-building aarch64 images (make test-arm): qemu-user binfmt for the chroot, TCG to boot it.
  PACKAGES+=(qemu-system-arm qemu-efi-aarch64 qemu-user-static binfmt-support)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "host packages: all present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "host packages: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "host packages: done"
