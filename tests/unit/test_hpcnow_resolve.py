"""The hpcnow profile's packages through the openeuler element's resolution step, on openEuler's own files
(the harness of test_openeuler_elements.py, its recording dnf): the names HPC-NOW's bootstrap asks for resolve,
the never-confirmed ones are skipped with a warning and recorded, a missing required one stops the build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from eulerpub.profiles import load_profile
from tests.unit.test_openeuler_elements import (
    ELEMENTS,
    MIRROR,
    OpenEulerRoot,
    _bootloader_names,
    ok,
    pytestmark,  # noqa: F401 (the same skips)
    squashed_package_installs,
)

HPCNOW_ELEMENTS = ["openeuler-cloud", "hpc-toolchain", "desktop", "hpcnow"]


def names() -> list[str]:
    """Every name the hpcnow profile's elements ask dnf for, after each element's redhat pkg-map."""
    found = list(_bootloader_names())
    for element in HPCNOW_ELEMENTS:
        redhat = json.loads((ELEMENTS / element / "pkg-map").read_text())["family"].get("redhat", {})
        for key in yaml.safe_load((ELEMENTS / element / "package-installs.yaml").read_text()):
            found += redhat.get(key, key).split()
    return sorted(set(found))


@pytest.fixture
def build(tmp_path: Path) -> OpenEulerRoot:
    oe = OpenEulerRoot(tmp_path, "24.03-LTS-SP1")
    shutil.copy2(ELEMENTS / "hpcnow" / "pkg-map", oe.upper / "share" / "pkg-map" / "hpcnow")
    oe.write("/tmp/package-installs.json", json.dumps(squashed_package_installs(HPCNOW_ELEMENTS)))
    ok(oe.run("openeuler", "pre-install.d", "01-openeuler-repos", {"DIB_EULER_MIRROR": MIRROR}))
    return oe


def optional() -> str:
    return " ".join(load_profile("hpcnow").optional_packages)


def test_never_confirmed_names_are_skipped_and_recorded(build: OpenEulerRoot) -> None:
    absent = {"gnome-classic-session", "ibus-table-chinese", "xrdp"}
    build.write("/opt/eulerpub-fakes/available", "".join(f"{n}\n" for n in names() if n not in absent))
    run = ok(build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages",
                       {"DIB_EULER_OPTIONAL_PACKAGES": optional()}))
    for name in sorted(absent):
        assert f"WARNING: optional package {name} is in none of the enabled repositories" in run.stdout
    assert sorted(build.read("/etc/dib-manifests/eulerpub-skipped-packages").split()) == sorted(absent)
    left = json.loads(build.read("/tmp/package-installs.json"))
    kept = {name for phase in left.values() for name, _ in phase.get("install", [])}
    assert {"munge", "mariadb", "mariadb-server", "gtk2-devel", "rpm-build", "environment-modules"} <= kept


def test_a_missing_required_name_stops_the_build(build: OpenEulerRoot) -> None:
    build.write("/opt/eulerpub-fakes/available",
                "".join(f"{n}\n" for n in names() if n not in {"munge", "mariadb-server"}))
    run = build.run("openeuler", "pre-install.d", "09-openeuler-resolve-packages",
                    {"DIB_EULER_OPTIONAL_PACKAGES": optional()})
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "openeuler: 2 requested package(s) are in none of the enabled repositories (OS, everything, EPOL, update): "
        "mariadb-server, munge"]
