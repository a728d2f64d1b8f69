"""Profiles: composition with `extends:` and errors that name the file and the key."""

from __future__ import annotations

import pytest

from eulerpub.errors import ConfigError, UsageError
from eulerpub.profiles import list_profiles, load_profile, merge

BUILTIN = ["desktop", "hpc", "hpc-desktop", "minimal"]


def write(directory, name, text):
    (directory / f"{name}.yaml").write_text(text)


def test_builtin_profiles_all_resolve():
    names = [s.name for s in list_profiles()]
    assert set(BUILTIN) <= set(names)
    for name in BUILTIN:
        profile = load_profile(name)
        assert profile.base_element == "openeuler"
        assert "openeuler-cloud" in profile.elements


def test_hpc_desktop_composes_both_parents_in_order():
    profile = load_profile("hpc-desktop")
    assert profile.elements.index("hpc-toolchain") < profile.elements.index("desktop")
    assert profile.elements.count("openeuler-cloud") == 1
    assert {"mpi", "desktop"} <= set(profile.checks)
    assert profile.env["DIB_EULER_KEEP_SOFTLOCKUP_PANIC"] == "0"
    assert profile.image_size_gb == 20


def test_merge_is_pure_and_follows_the_rules():
    base = {"elements": ["a"], "formats": ["qcow2"], "env": {"X": "1"}, "clouds": {"aws": {"regions": ["r1"]}}}
    top = {"elements": ["b", "a"], "formats": ["raw"], "env": {"Y": "2"}, "clouds": {"aws": {"public": True}}}
    merged = merge(base, top)
    assert merged == {"elements": ["a", "b"], "formats": ["raw"], "env": {"X": "1", "Y": "2"},
                      "clouds": {"aws": {"regions": ["r1"], "public": True}}}
    assert base["elements"] == ["a"]


def test_user_directory_comes_first_and_can_extend_builtins(tmp_path):
    write(tmp_path, "lab", "extends: hpc\npackages: [gromacs]\nclouds: {aws: {regions: [eu-west-1]}}\n")
    profile = load_profile("lab", [tmp_path])
    assert profile.packages == ["gromacs"]
    assert profile.cloud("aws").regions == ["eu-west-1"]
    assert profile.cloud("aws").upload == "ebs"
    assert "hpc-toolchain" in profile.elements


def test_profiles_path_from_environment(tmp_path, monkeypatch):
    write(tmp_path, "envprof", "extends: minimal\n")
    monkeypatch.setenv("EULERPUB_PROFILES_PATH", str(tmp_path))
    assert load_profile("envprof").name == "envprof"


@pytest.mark.parametrize(("text", "expected"), [
    ("extends: minimal\nformats: [qcow2, iso]\n", "formats[1]: expected 'qcow2', 'raw', 'vmdk' or 'vhd'"),
    ("extends: minimal\nelemnts: [x]\n", "elemnts: unknown key"),
    ("extends: minimal\nclouds: {aws: {regions: [a], bukket: b}}\n", "clouds.aws.bukket: unknown key"),
    ("extends: minimal\nname_template: 'my-{arch}'\n", "name_template: must start with"),
    ("extends: minimal\nimage_size_gb: 1\n", "image_size_gb: Input should be greater than or equal to 2"),
    ("elements: [vm]\n", "releases: required key is missing"),
    ("extends: minimal\nfoo: [unclosed\n", "malformed YAML"),
    ("extends: nothere\n", "extends: unknown profile 'nothere'"),
    ("extends: bad\n", "extends: cycle bad -> bad"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_profiles_name_file_and_key(tmp_path, text, expected):
    write(tmp_path, "bad", text)
    with pytest.raises(ConfigError) as err:
        load_profile("bad", [tmp_path])
    assert str(tmp_path / "bad.yaml") in str(err.value)
    assert expected in str(err.value)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(UsageError, match=r"unknown profile .nope.; known profiles: .*hpc"):
        load_profile("nope")


def test_target_must_be_listed_by_profile():
    profile = load_profile("hpc")
    assert profile.check_target(None, None) == (profile.releases[0], profile.arches[0])
    with pytest.raises(UsageError, match="does not build arch 'riscv64'"):
        profile.check_target(None, "riscv64")


@pytest.mark.parametrize("args", [
    ("profiles", "show", "nope"),
    ("profiles", "show", "bad", "--profiles-dir", "{dir}"),
    ("profiles", "list", "--profiles-dir", "{dir}"),
])
def test_cli_bad_profiles_exit_2_with_one_line(cli, tmp_path, args):
    write(tmp_path, "bad", "extends: bad\n")
    result = cli(*[a.format(dir=tmp_path) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr


def test_cli_show_json_is_the_resolved_profile(cli):
    import json
    result = cli("profiles", "show", "hpc", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["name"] == "hpc" and "hpc-toolchain" in data["elements"]
