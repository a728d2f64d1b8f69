# diskimage-builder's bootloader element appends DIB_BOOTLOADER_DEFAULT_CMDLINE ("nofb nomodeset
# gfxpayload=text" by default) to the kernel command line. openEuler's own build drops nomodeset for kernels
# >= 6.1 (GDM needs modesetting), and the base image's GRUB_CMDLINE_LINUX already carries the official
# options: add nothing. This file sorts after the bootloader's 10-bootloader-default-cmdline, so it wins.
export DIB_BOOTLOADER_DEFAULT_CMDLINE=${DIB_EULER_EXTRA_CMDLINE:-}
