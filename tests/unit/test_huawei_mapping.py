"""Huawei adapter: the pure mappings from eulerpub's build to IMS request fields."""

from __future__ import annotations

import pytest
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ConnectionException,
    SdkError,
    ServerResponseException,
)

from eulerpub import retry
from eulerpub.clouds import huawei
from eulerpub.clouds.base import BuildIdentity, DiskImage
from eulerpub.errors import CredentialsError, UsageError
from eulerpub.profiles import CloudDefaults, Profile
from eulerpub.publish.plan import PublishOptions, make_spec
from eulerpub.publish.source import Source
from eulerpub.release.config import ReleaseConfig
from eulerpub.release.matrix import expand

IMS_VERSIONS = ["openEuler 20.03 64bit", "openEuler 22.03 64bit", "openEuler 24.03 64bit", "CentOS 7.9 64bit",
                "Other Linux(64 bit)"]


def test_architecture_maps_to_ims_names_and_rejects_riscv():
    assert huawei.ims_architecture("x86_64") == "x86"
    assert huawei.ims_architecture("aarch64") == "arm"
    with pytest.raises(UsageError, match="riscv64"):
        huawei.ims_architecture("riscv64")


@pytest.mark.parametrize(("arch", "boot_mode", "expected"), [
    ("aarch64", None, "uefi"), ("aarch64", "legacy-bios", "uefi"), ("x86_64", None, "bios"),
    ("x86_64", "uefi", "uefi"), ("x86_64", "legacy-bios", "bios"), ("x86_64", "uefi-preferred", "bios"),
])
def test_firmware_type_follows_arch_and_boot_mode(arch, boot_mode, expected):
    assert huawei.firmware_type(arch, boot_mode) == expected


@pytest.mark.parametrize(("release", "expected"), [
    ("24.03-LTS-SP1", "openEuler 24.03 64bit"), ("22.03-LTS", "openEuler 22.03 64bit"),
    ("25.03", "Other Linux(64 bit)"), ("24.0", "Other Linux(64 bit)"),
])
def test_os_version_is_the_listed_openeuler_release_or_other_linux(release, expected):
    assert huawei.choose_os_version(release, "x86_64", IMS_VERSIONS) == expected


def test_os_version_prefers_an_arm_variant_for_aarch64_only():
    versions = ["openEuler 24.03 64bit", "openEuler 24.03 64bit(ARM)"]
    assert huawei.choose_os_version("24.03-LTS", "aarch64", versions) == "openEuler 24.03 64bit(ARM)"
    assert huawei.choose_os_version("24.03-LTS", "x86_64", versions) == "openEuler 24.03 64bit"


def test_tags_listed_as_key_dot_value_or_key_equals_value_split_once():
    parsed = huawei.parse_tags(["eulerpub:release.24.03-LTS", "managed-by.eulerpub", "empty.",
                                "eulerpub-release=24.03-LTS-SP1"])
    assert parsed == {"eulerpub:release": "24.03-LTS", "managed-by": "eulerpub", "empty": "",
                      "eulerpub-release": "24.03-LTS-SP1"}


def test_eulerpub_keys_go_out_strict_and_both_forms_read_back():
    tags = {"eulerpub:build-id": "b0123", "eulerpub:release": "24.03-LTS-SP1", "managed-by": "eulerpub",
            "team_a": "x.y"}
    wire = huawei.ims_tags(tags)
    assert wire == {"eulerpub-build-id": "b0123", "eulerpub-release": "24.03-LTS-SP1", "managed-by": "eulerpub",
                    "team_a": "x.y"}
    assert huawei.canonical_tags(wire) == tags
    assert huawei.canonical_tags(tags) == tags  # an image published with the old keys
    assert huawei.canonical_tags({"eulerpub:build-id": "old", "eulerpub-build-id": "new"}) == {
        "eulerpub:build-id": "new"}


@pytest.mark.parametrize(("key", "value"), [("team:a", "x"), ("k" * 37, "x"), ("team", "a/b"), ("team", "v" * 44),
                                            ("", "x"), ("team a", "x")])
def test_a_tag_the_strict_ims_rules_refuse_is_one_sentence(key, value):
    with pytest.raises(UsageError, match="cannot be used on Huawei Cloud: keys are 1-36"):
        huawei.ims_tags({key: value})


@pytest.mark.parametrize(("status", "state"), [("active", "available"), ("queued", "pending"),
                                               ("saving", "pending"), ("killed", "failed"), (None, "pending")])
def test_image_status_maps_to_state(status, state):
    assert huawei.image_state(status) == state


def test_job_percent_reads_fractions_and_percents():
    assert huawei.job_percent(None) is None
    assert huawei.job_percent(0.0) == 0
    assert huawei.job_percent(0.456) == 46
    assert huawei.job_percent(1.0) == 100
    assert huawei.job_percent(37.0) == 37


def test_share_targets_take_bare_and_region_scoped_project_ids():
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    entries = [a, f"cn-north-4:{b}", f"cn-east-3:{c}", a]
    assert huawei.share_targets(entries, "cn-north-4") == [a, b]
    assert huawei.share_targets(entries, "cn-east-3") == [a, c]
    assert huawei.share_targets(entries, "ap-southeast-1") == [a]


def _client_error(status: int, code: str, message: str = "") -> ClientRequestException:
    return ClientRequestException(status, SdkError("req-1", code, message))


def test_throttling_5xx_and_connection_errors_are_transient_4xx_are_not():
    assert retry.is_transient(_client_error(429, "429"))
    assert retry.is_transient(ServerResponseException(500, SdkError("r", "EMU.0500", "boom")))
    assert retry.is_transient(ConnectionException("connection refused"))
    assert not retry.is_transient(_client_error(400, "IMG.0001", "min_disk invalid"))
    assert not retry.is_transient(_client_error(401, "APIGW.0301", "Incorrect IAM authentication information"))


def test_a_401_becomes_one_credentials_sentence():
    error = huawei.ERRORS.translate(_client_error(401, "APIGW.0301", "verify aksk signature fail"), "cn-north-4",
                                    "list_os_versions")
    assert isinstance(error, CredentialsError)
    assert str(error).startswith("huawei rejected the credentials in cn-north-4 while calling list_os_versions")
    assert "HUAWEICLOUD_SDK_AK" in str(error) and "\n" not in str(error)


def test_project_id_variable_is_per_region():
    assert huawei.project_id_variable("cn-north-4") == "HUAWEICLOUD_SDK_PROJECT_ID_CN_NORTH_4"


def test_missing_keys_and_project_ids_are_named(monkeypatch):
    adapter = huawei.HuaweiAdapter()
    with pytest.raises(CredentialsError, match="HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"):
        adapter._client("cn-north-4")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk")
    with pytest.raises(CredentialsError, match="HUAWEICLOUD_SDK_PROJECT_ID_CN_NORTH_4"):
        adapter._client("cn-north-4")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "f" * 32)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID_CN_NORTH_4", "e" * 32)
    assert adapter._project_id("cn-north-4") == "e" * 32
    assert adapter._project_id("cn-east-3") == "f" * 32


def test_the_agency_comes_from_the_command_line_then_release_yaml_then_the_profile(tmp_path):
    source = Source(image=DiskImage(path=tmp_path / "disk.raw", format="raw", size=10, virtual_size=10,
                                    sha256="0" * 64),
                    identity=BuildIdentity("b-1", "minimal", "24.03-LTS-SP1", "x86_64"),
                    name="openEuler-24.03-LTS-SP1-x86_64-minimal-20250101", journal_dir=tmp_path / "publish")
    defaults = CloudDefaults(regions=["cn-north-4"], copy_to=["cn-east-3"], bucket="b", agency="from-profile")
    assert make_spec("huawei", source, PublishOptions(), defaults).agency == "from-profile"
    assert make_spec("huawei", source, PublishOptions(agency="from-cli"), defaults).agency == "from-cli"
    with pytest.raises(UsageError, match="--agency is Huawei Cloud only"):
        make_spec("aws", source, PublishOptions(agency="x"), CloudDefaults(regions=["us-east-1"]))

    profiles = {"min": Profile(name="min", releases=["24.03-LTS-SP1"], arches=["x86_64"],
                               clouds={"huawei": defaults})}
    clouds = {"huawei": {"regions": ["cn-north-4"]}}
    (cell,) = expand(ReleaseConfig(profiles=["min"], releases=["24.03-LTS-SP1"], arches=["x86_64"], clouds=clouds),
                     profiles, source=tmp_path / "release.yaml")
    assert cell.agency == "from-profile"
    clouds["huawei"]["agency"] = "from-release-yaml"
    (cell,) = expand(ReleaseConfig(profiles=["min"], releases=["24.03-LTS-SP1"], arches=["x86_64"], clouds=clouds),
                     profiles, source=tmp_path / "release.yaml")
    assert cell.agency == "from-release-yaml"
