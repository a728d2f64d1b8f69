"""Tencent adapter: the pure mappings from eulerpub's build to CVM request fields."""

from __future__ import annotations

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from eulerpub import retry
from eulerpub.clouds import tencent
from eulerpub.errors import CloudError, CredentialsError, UsageError

LINUX = ["CentOS", "OpenEuler", "Other Linux"]  # DescribeImportImageOs: ImportImageOsListSupported.Linux
IMPORT_OS = [("CentOS", ["7", "8"], ["x86_64", "arm_64"]), ("OpenEuler", ["20.03", "22.03", "24.03"], ["x86_64"]),
             ("Other Linux", ["8"], ["x86_64", "i386", "arm_64"])]  # its ImportImageOsVersionSet


def test_architecture_maps_aarch64_to_arm_64():
    assert tencent.cvm_architecture("x86_64") == "x86_64"
    assert tencent.cvm_architecture("aarch64") == "arm_64"
    with pytest.raises(UsageError):
        tencent.cvm_architecture("riscv64")


@pytest.mark.parametrize(("arch", "boot_mode", "expected"), [
    ("aarch64", None, "UEFI"), ("x86_64", None, "Legacy BIOS"), ("x86_64", "uefi", "UEFI"),
    ("x86_64", "uefi-preferred", "Legacy BIOS"), ("aarch64", "legacy-bios", "UEFI"),
])
def test_boot_mode(arch, boot_mode, expected):
    assert tencent.cvm_boot_mode(arch, boot_mode) == expected


def test_import_os_is_openeuler_when_listed_for_the_release_and_arch_else_other_linux_as_listed():
    assert tencent.choose_import_os("24.03-LTS-SP1", "x86_64", LINUX, IMPORT_OS) == ("OpenEuler", "24.03")
    assert tencent.choose_import_os("24.03-LTS-SP1", "aarch64", LINUX, IMPORT_OS) == ("Other Linux", "8")
    assert tencent.choose_import_os("25.03", "x86_64", LINUX, IMPORT_OS) == ("Other Linux", "8")
    assert tencent.choose_import_os("24.03", "x86_64", None, IMPORT_OS) == ("OpenEuler", "24.03")


def test_import_os_needs_the_type_in_the_supported_list_and_some_version_for_the_arch():
    # A version entry whose OsName ImportImageOsListSupported does not list is not an OsType ImportImage takes.
    assert tencent.choose_import_os("24.03", "x86_64", ["Other Linux"], IMPORT_OS) == ("Other Linux", "8")
    with pytest.raises(UsageError, match=r"lists neither openEuler 24\.03 nor Other Linux for arm_64"):
        tencent.choose_import_os("24.03", "aarch64", LINUX, [("Other Linux", ["8"], ["x86_64"])])
    with pytest.raises(UsageError):
        tencent.choose_import_os("24.03", "x86_64", LINUX, [])


def test_image_url_is_the_cos_object_url_with_the_key_percent_encoded():
    assert (tencent.image_url("imgs-1250000000", "ap-guangzhou", "eulerpub/b1/disk.qcow2")
            == "https://imgs-1250000000.cos.ap-guangzhou.myqcloud.com/eulerpub/b1/disk.qcow2")
    assert (tencent.image_url("imgs-1250000000", "ap-guangzhou", "eulerpub/b1/my disk é+#?.qcow2")
            == "https://imgs-1250000000.cos.ap-guangzhou.myqcloud.com/eulerpub/b1/my%20disk%20%C3%A9%2B%23%3F.qcow2")


@pytest.mark.parametrize(("state", "expected"), [("NORMAL", "available"), ("IMPORTING", "pending"),
                                                 ("SYNCING", "pending"), ("IMPORTFAILED", "failed"),
                                                 ("CREATEFAILED", "failed")])
def test_image_state(state, expected):
    assert tencent.image_state(state) == expected


def test_tag_specification_is_for_images():
    assert tencent.tag_specification({"a": "1"}) == [{"ResourceType": "image", "Tags": [{"Key": "a", "Value": "1"}]}]


def test_http_profile_splits_scheme_and_host():
    profile = tencent.http_profile("http://127.0.0.1:8123")
    assert (profile.endpoint, profile.protocol) == ("127.0.0.1:8123", "http")
    assert tencent.http_profile(None).endpoint is None


@pytest.mark.parametrize(("code", "transient"), [
    ("RequestLimitExceeded", True), ("RequestLimitExceeded.UinLimitExceeded", True), ("InternalError", True),
    ("ClientNetworkError", True), ("ServerNetworkError", True), ("AuthFailure.SignatureFailure", False),
    ("InvalidParameterValue", False), ("InvalidImageName.Duplicate", False),
])
def test_retry_classification(code, transient):
    assert retry.is_transient(TencentCloudSDKException(code, "message", "req")) is transient


def test_auth_failures_become_credentials_errors_and_others_cloud_errors():
    error = tencent.ERRORS.translate(TencentCloudSDKException("AuthFailure.SignatureFailure", "does not match"),
                                     "ap-guangzhou", "DescribeImages")
    assert isinstance(error, CredentialsError) and "TENCENTCLOUD_SECRET_KEY" in str(error)
    other = tencent.ERRORS.translate(TencentCloudSDKException("InvalidParameterValue", "bad"), "ap-guangzhou",
                                     "ImportImage", "img-1")
    assert isinstance(other, CloudError) and not isinstance(other, CredentialsError)
    assert str(other) == "tencent/ap-guangzhou: ImportImage on img-1 failed: InvalidParameterValue: bad"


@pytest.mark.parametrize(("code", "sentence"), [
    ("InvalidImageOsType.Unsupported", "CVM does not import this OS type here"),
    ("InvalidImageOsVersion.Unsupported", "CVM does not import this OS version here"),
    ("RegionAbilityLimit.UnsupportedToImportImage", "this region does not import images"),
    ("UnsupportedOperation.ArmArchitecture", "CVM does not import arm_64 images here"),
    ("ImageQuotaLimitExceeded", "the region's custom image quota is used up"),
])
def test_import_refusals_the_user_can_act_on_are_one_sentence_each(code, sentence):
    error = tencent.ERRORS.translate(TencentCloudSDKException(code, "raw cloud text", "req"), "ap-guangzhou",
                                     "ImportImage", "https://b-1.cos.ap-guangzhou.myqcloud.com/k")
    assert isinstance(error, UsageError) and not isinstance(error, CredentialsError)
    assert str(error).startswith(f"tencent/ap-guangzhou: ImportImage refused: {sentence}")
    assert str(error).endswith(f"({code})") and "raw cloud text" not in str(error)
    assert "." not in tencent.SENTENCES[code] and "\n" not in str(error)  # one sentence
