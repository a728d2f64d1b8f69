"""The release catalog: URLs exactly as openEuler publishes them, mirrors, and errors that list the choices."""

from __future__ import annotations

import pytest

from eulerpub import catalog
from eulerpub.errors import UsageError

OFFICIAL = "https://repo.openeuler.org/"


@pytest.mark.parametrize(("release", "arch", "path"), [
    ("24.03-LTS-SP1", "x86_64",
     "openEuler-24.03-LTS-SP1/virtual_machine_img/x86_64/openEuler-24.03-LTS-SP1-x86_64.qcow2.xz"),
    ("22.03-LTS-SP4", "aarch64",
     "openEuler-22.03-LTS-SP4/virtual_machine_img/aarch64/openEuler-22.03-LTS-SP4-aarch64.qcow2.xz"),
    ("25.09", "x86_64", "openEuler-25.09/virtual_machine_img/x86_64/openEuler-25.09-x86_64.qcow2.xz"),
    ("20.03-LTS", "aarch64", "openEuler-20.03-LTS/virtual_machine_img/aarch64/openEuler-20.03-LTS.aarch64.qcow2.xz"),
    ("20.03-LTS-SP4", "x86_64",
     "openEuler-20.03-LTS-SP4/virtual_machine_img/x86_64/openEuler-20.03-LTS-SP4-x86_64.qcow2.xz"),
    ("24.03-LTS-SP4", "riscv64",
     "openEuler-24.03-LTS-SP4/virtual_machine_img/riscv64/rva23/openEuler-24.03-LTS-SP4-riscv64-rva23.qcow2.xz"),
])
def test_image_urls_follow_the_official_layout(release, arch, path):
    source = catalog.image_source(release, arch)
    assert source.url == OFFICIAL + path
    assert source.checksum_url == OFFICIAL + path + ".sha256sum"
    assert source.file_name == path.rsplit("/", 1)[1]
    assert (source.release, source.arch) == (release, arch)


def test_catalog_covers_every_release_in_the_reference_once():
    entries = catalog.catalog()
    pairs = [(s.release, s.arch) for s in entries]
    assert len(pairs) == len(set(pairs))
    releases = {s.release for s in entries}
    assert releases == {"20.03-LTS", "20.03-LTS-SP4", "22.03-LTS-SP1", "22.03-LTS-SP2", "22.03-LTS-SP3",
                        "22.03-LTS-SP4", "24.03-LTS", "24.03-LTS-SP1", "24.03-LTS-SP2", "24.03-LTS-SP3",
                        "24.03-LTS-SP4", "25.03", "25.09"}
    assert {s.release for s in entries if s.arch == "riscv64"} == {"24.03-LTS-SP4"}
    assert all((r, a) in pairs for r in releases for a in ("x86_64", "aarch64"))


def test_unknown_release_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown openEuler release '23\.09'; known releases: 20\.03-LTS, .*25\.09"):
        catalog.image_source("23.09", "x86_64")


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown architecture 'sparc'; known architectures: x86_64, aarch64, "
                                         r"riscv64") as err:
        catalog.image_source("24.03-LTS-SP1", "sparc")
    assert err.value.exit_code == 2


def test_riscv64_only_where_published():
    with pytest.raises(UsageError, match=r"openEuler 24\.03-LTS-SP1 has no riscv64 image; its architectures: "
                                         r"x86_64, aarch64$"):
        catalog.image_source("24.03-LTS-SP1", "riscv64")


def test_names_are_forgiving_about_case_and_common_arch_aliases():
    source = catalog.image_source("24.03-lts-sp2", "arm64")
    assert (source.release, source.arch) == ("24.03-LTS-SP2", "aarch64")
    assert catalog.image_source("25.03", "AMD64").arch == "x86_64"


@pytest.mark.parametrize(("given", "root"), [
    ("https://mirrors.example.edu/openeuler", "https://mirrors.example.edu/openeuler/"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
])
def test_mirror_root_replaces_the_official_host(given, root):
    source = catalog.image_source("24.03-LTS", "x86_64", given)
    assert source.url == root + "openEuler-24.03-LTS/virtual_machine_img/x86_64/openEuler-24.03-LTS-x86_64.qcow2.xz"


def test_mirror_comes_from_the_environment_when_not_given(monkeypatch):
    assert catalog.mirror_root() == OFFICIAL
    monkeypatch.setenv("EULERPUB_MIRROR", "https://env.example/oe")
    assert catalog.mirror_root() == "https://env.example/oe/"
    assert catalog.mirror_root("https://flag.example/") == "https://flag.example/"


@pytest.mark.parametrize("bad", ["repo.openeuler.org", "ftp://repo.openeuler.org/", "https://"])
def test_a_mirror_that_is_not_an_http_url_is_bad_input(bad):
    with pytest.raises(UsageError, match="is not an http\\(s\\) URL"):
        catalog.mirror_root(bad)
