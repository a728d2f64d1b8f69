export DISTRO_NAME=debian
export DIB_RELEASE=bookworm
export DIB_INIT_SYSTEM=systemd
export DIB_DISTRIBUTION_MIRROR=${DIB_DISTRIBUTION_MIRROR:-http://deb.debian.org/debian}
export DIB_DEBIAN_SECURITY_MIRROR=${DIB_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The bootloader element's Debian package names pull grub-efi-amd64/grub-pc, which conflict and whose
# maintainer scripts would run grub-install on their own; the stand-in installs the plain binaries
# (package-installs.yaml) and lets the bootloader element run grub-install for BIOS and/or UEFI.
export DIB_SKIP_GRUB_PACKAGE_INSTALL=True
export EFI_BOOT_DIR="EFI/debian"
