"""The hpcnow profile: what it composes, the sshd policy only it selects, and the packages docs/packages.md lists."""

from __future__ import annotations

from pathlib import Path

import yaml

from eulerpub.profiles import list_profiles, load_profile

REPO = Path(__file__).resolve().parents[2]


def test_hpcnow_extends_hpc_desktop_with_its_element_policy_and_check():
    profile = load_profile("hpcnow")
    parent = load_profile("hpc-desktop")
    assert profile.elements == [*parent.elements, "hpcnow"]
    assert profile.env == {**parent.env, "DIB_EULER_SSHD_POLICY": "hpcnow"}
    assert profile.checks == [*parent.checks, "hpcnow"]
    assert set(parent.optional_packages) < set(profile.optional_packages)


def test_every_other_builtin_profile_keeps_the_hardened_sshd_policy():
    others = [s.name for s in list_profiles() if s.name != "hpcnow"]
    assert others
    for name in others:
        assert "DIB_EULER_SSHD_POLICY" not in load_profile(name).env, name  # the element's default: hardened


def test_docs_list_every_package_the_hpcnow_element_asks_for():
    asked = yaml.safe_load((REPO / "elements/hpcnow/package-installs.yaml").read_text())
    docs = (REPO / "docs/packages.md").read_text()
    section = docs[docs.index("## hpcnow"):]
    missing = [name for name in asked if name not in section]
    assert missing == []
    for name in load_profile("hpcnow").optional_packages:
        assert name in asked or name in docs[:docs.index("## hpcnow")], name
