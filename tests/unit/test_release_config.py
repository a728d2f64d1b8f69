"""release.yaml: the checked-in matrix loads, and every problem names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from eulerpub.errors import ConfigError
from eulerpub.release.config import load_config, load_profiles

REPO = Path(__file__).resolve().parents[2]

VALID = """
profiles: [minimal]
releases: [24.03-LTS-SP1]
arches: [x86_64]
clouds:
  aws: {regions: [us-east-1]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(text)
    return path


def test_checked_in_release_yaml_loads_with_its_profiles():
    config = load_config(REPO / "release.yaml")
    profiles = load_profiles(config, REPO / "release.yaml")
    assert set(profiles) == set(config.profiles)
    assert config.concurrency >= 1
    assert set(config.clouds) == {"aws", "huawei", "tencent", "alibaba"}


def test_minimal_config_takes_defaults(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.concurrency == 4
    assert config.exclude == []
    assert config.clouds["aws"].copy_to is None  # left to the profile


@pytest.mark.parametrize(("text", "expected"), [
    (VALID + "colour: blue\n", "release.yaml: colour: unknown key"),
    (VALID.replace("releases: [24.03-LTS-SP1]\n", ""), "release.yaml: releases: required key is missing"),
    (VALID.replace("[x86_64]", "[x86_64, sparc]"), "release.yaml: arches[1]: expected 'x86_64', 'aarch64' or"),
    (VALID.replace("aws:", "azure:"), "release.yaml: clouds.azure: expected 'aws', 'huawei', 'tencent' or 'alibaba'"),
    (VALID.replace("{regions: [us-east-1]}", "{regions: [us-east-1], copy_to: [a, b, a]}"),
     "release.yaml: clouds.aws.copy_to: 'a' is listed twice"),
    (VALID.replace("{regions: [us-east-1]}", "{regions: []}"), "release.yaml: clouds.aws.regions: List should"),
    (VALID.replace("{regions: [us-east-1]}", "{regions: [us-east-1], public: maybe}"),
     "release.yaml: clouds.aws.public: Input should be a valid boolean"),
    (VALID + "concurrency: 0\n", "release.yaml: concurrency: Input should be greater than or equal to 1"),
    (VALID + "profiles: [minimal, minimal]\n", "release.yaml: profiles: 'minimal' is listed twice"),
    (VALID + "exclude: [{arch: aarch64}]\n", "release.yaml: exclude[0].arch: 'aarch64' is not in the matrix"),
    (VALID + "exclude: [{colour: red}]\n", "release.yaml: exclude[0].colour: expected 'profile', 'release'"),
    (VALID + "exclude: [{}]\n", "release.yaml: exclude[0] is empty"),
    ("- just\n- a list\n", "release.yaml: expected a mapping of settings, got list"),
    ("profiles: [minimal\n", "release.yaml: line 2: malformed YAML"),
])
def test_errors_name_file_and_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert expected in str(caught.value)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"no-such.yaml: no such release config"):
        load_config(tmp_path / "no-such.yaml")


def test_unknown_profile_names_the_key(tmp_path):
    path = write(tmp_path, VALID.replace("[minimal]", "[minimal, nosuch]"))
    with pytest.raises(ConfigError, match=r"release.yaml: profiles\[1\]: unknown profile 'nosuch'"):
        load_profiles(load_config(path), path)
