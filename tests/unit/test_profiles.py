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
    assert profile.env["DIB_EULER_CMDLINE_DROP"] == "softlockup_panic=1"
    assert profile.optional_packages == ["sshpass", "xrdp", "wqy-zenhei-fonts"]  # both parents' append
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
    # issue 9: what a profile may hand to the build (env, packages, elements) and to the name template
    ("extends: minimal\nenv: {LD_PRELOAD: /tmp/x.so}\n", "env: 'LD_PRELOAD': a profile sets only variables for"),
    ("extends: minimal\nenv: {PATH: /tmp/bin}\n", "env: 'PATH': a profile sets only"),
    ("extends: minimal\nenv: {ELEMENTS_PATH: /tmp/el}\n", "env: 'ELEMENTS_PATH': a profile sets only"),
    ("extends: minimal\nenv: {DIB_LOCAL_IMAGE: /etc/shadow}\n", "DIB_LOCAL_IMAGE is set by eulerpub itself"),
    ("extends: minimal\nenv: {DIB_PYTHON_EXEC: /tmp/sh}\n", "DIB_PYTHON_EXEC is set by eulerpub itself"),
    ("extends: minimal\npackages: ['bash; id,--nogpgcheck']\n", "'bash; id,--nogpgcheck' is not a package name"),
    ("extends: minimal\npackages: ['--nogpgcheck']\n", "'--nogpgcheck' is not a package name"),
    ("extends: minimal\nelements: [/etc]\n", "'/etc' is not an element name"),
    ("extends: minimal\nelements: ['../../tmp/evil']\n", "is not an element name"),
    ("extends: minimal\nbase_element: /opt/el\n", "base_element: '/opt/el' is not an element name"),
    ("extends: minimal\nname_template: 'openEuler-{release}-{arch:{build_id.__class__}}'\n",
     "placeholders take no format spec"),
    ("extends: minimal\nname_template: 'openEuler-{release}-{arch!r}'\n", "placeholders take no format spec"),
    ("extends: minimal\nname_template: 'openEuler-{release}-{arch.__class__}'\n", "unknown placeholder"),
    ("extends: minimal\nreleases: [99.99-LTS]\n", "releases[0]: unknown openEuler release '99.99-LTS'"),
    ("extends: minimal\nclouds: {aws: {regions: ['us-east-1; rm']}}\n", "clouds.aws.regions[0]: 'us-east-1; rm'"),
    ("extends: minimal\nclouds: {huawei: {regions: [cn-north-4], share: ['1234']}}\n",
     "clouds.huawei.share[0]: '1234': expected a 32-hex-digit project id"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "nested more than 32 levels deep"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nreleases: *e\narches: [x86_64]\n",
     "more than 20000 values once its aliases are expanded"),
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


def test_non_utf8_profile_is_one_sentence(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"releases: [\xff\xfe]\n")
    with pytest.raises(ConfigError, match=r"bin.yaml: not UTF-8 text \(byte 11 is 0xff\)"):
        load_profile("bin", [tmp_path])


def test_an_error_quotes_a_short_prefix_of_a_long_value(tmp_path):
    write(tmp_path, "long", "extends: minimal\nelements: ['" + "x" * 5000 + "/']\n")
    with pytest.raises(ConfigError) as err:
        load_profile("long", [tmp_path])
    assert len(str(err.value)) < 300 and "(5001 characters)" in str(err.value)


def test_a_profile_file_name_with_control_characters_is_ignored_not_printed(tmp_path, cli):
    write(tmp_path, "evil\x1b[2J", "extends: minimal\n")
    write(tmp_path, "prüfung", "extends: minimal\n")
    names = [s.name for s in list_profiles([tmp_path])]
    assert "prüfung" in names and not any("\x1b" in n for n in names)
    result = cli("profiles", "list", "--profiles-dir", tmp_path)
    assert result.exit_code == 0 and "\x1b" not in result.stdout + result.stderr
