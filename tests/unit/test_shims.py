"""The host shims are shell files (eulerpub/shims/*.sh, shellchecked by `make lint`), installed with the real
tools' paths filled in (issue 15 item 7: they were bash inside Python strings, where shellcheck never looked)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from eulerpub import hostenv


def test_every_shim_file_is_installed_with_its_placeholders_filled(tmp_path):
    shims = hostenv.install_shims(tmp_path, device_mapper=True, esp=True)
    files = sorted(p.stem for p in hostenv.SHIMS_DIR.glob("*.sh"))
    assert files == ["dmsetup", "kpartx", "mount", "sudo", "umount"]
    assert sorted(p.name for p in shims.iterdir()) == files
    for name in files:
        installed = (shims / name).read_text()
        assert os.access(shims / name, os.X_OK)
        assert not re.search(r"@[A-Z_]+@", installed), name
    real_mount = shutil.which("mount", path=hostenv.SECURE_PATH) or "/usr/bin/mount"
    assert f"REAL={real_mount}\n" in (shims / "mount").read_text()
    assert f'NEW_PATH="$SHIM_DIR:{hostenv.SECURE_PATH}"' in (shims / "sudo").read_text()


def test_the_shims_pass_shellcheck():
    result = subprocess.run(["shellcheck", "-x", *sorted(hostenv.SHIMS_DIR.glob("*.sh"))], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout
