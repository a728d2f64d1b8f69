# As the openeuler element does (elements/openeuler/environment.d/20-openeuler-bootloader-cmdline.bash): the
# base image's GRUB_CMDLINE_LINUX (openEuler's official one, which the stand-in carries) is the command line,
# and diskimage-builder's default "nofb nomodeset gfxpayload=text" is not added (GDM needs modesetting).
export DIB_BOOTLOADER_DEFAULT_CMDLINE=${DIB_EULER_EXTRA_CMDLINE:-}
