"""Pure mappings of the Alibaba adapter: names ECS's API uses, its error codes' verdicts."""

from __future__ import annotations

import inspect

import pytest
from alibabacloud_ecs20140526 import models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from eulerpub.clouds import alibaba
from eulerpub.errors import UsageError


def test_architecture_boot_mode_and_format_are_ecs_names():
    assert alibaba.ecs_architecture("x86_64") == "x86_64" and alibaba.ecs_architecture("aarch64") == "arm64"
    with pytest.raises(UsageError, match="riscv64"):
        alibaba.ecs_architecture("riscv64")
    assert [alibaba.ecs_boot_mode("x86_64", m) for m in (None, "legacy-bios", "uefi-preferred", "uefi")] == \
        ["BIOS", "BIOS", "BIOS", "UEFI"]
    assert alibaba.ecs_boot_mode("aarch64", None) == "UEFI"
    assert [alibaba.ecs_format(f) for f in ("raw", "qcow2", "vhd")] == ["RAW", "QCOW2", "VHD"]
    with pytest.raises(UsageError, match="vmdk"):
        alibaba.ecs_format("vmdk")


@pytest.mark.parametrize(("status", "state"), [("Available", "available"), ("Creating", "pending"),
                                               ("Waiting", "pending"), ("CreateFailed", "failed"),
                                               ("UnAvailable", "failed"), (None, "pending")])
def test_image_status(status, state):
    assert alibaba.image_state(status) == state


def test_progress_and_client_token():
    assert [alibaba.percent(p) for p in ("45%", "100%", "", None, "n/a")] == [45, 100, None, None, None]
    assert alibaba.client_token("é" * 80) == "?" * 64


def test_tags_beyond_twenty_are_one_sentence():
    with pytest.raises(UsageError, match="at most 20 tags"):
        alibaba.tag_list(dict, {f"k{i}": "v" for i in range(21)})


@pytest.mark.parametrize(("exc", "transient"), [
    (ClientException(status_code=400, code="Throttling.User", message="m"), True),
    (ServerException(status_code=503, code="ServiceUnavailable", message="m"), True),
    (ServerException(status_code=500, code="InternalError", message="m"), True),
    (ClientException(status_code=400, code="InvalidImageName.Malformed", message="m"), False),
    (ClientException(status_code=404, code="InvalidAccessKeyId.NotFound", message="m"), False),
])
def test_retry_verdicts(exc, transient):
    assert alibaba._transient(exc) is transient


def test_a_connection_failure_is_transient_and_failures_are_read():
    context = RetryPolicyContext(retries_attempted=1, exception=ConnectionError("refused"))
    assert alibaba._transient(UnretryableException(context)) is True
    failure = alibaba._inspect(ClientException(status_code=400, code="SignatureDoesNotMatch", message="m"))
    assert failure is not None and failure.credentials and not failure.not_found
    gone = alibaba._inspect(ClientException(status_code=404, code="InvalidImageId.NotFound", message="m"))
    assert gone is not None and gone.not_found


def test_platform_is_the_sdk_models_documented_default_and_it_lists_no_openeuler():
    source = inspect.getsource(models.ImportImageRequest.__init__)
    platforms = source.split("The operating system distribution. Valid values:")[1].split("Default value:")[0]
    names = [line.strip(" #-") for line in platforms.splitlines() if line.strip(" #-")]
    assert alibaba.PLATFORM in names and not [n for n in names if "euler" in n.lower()]
    assert f"Default value: {alibaba.PLATFORM}." in source
    wire = models.ImportImageRequest(architecture="arm64", boot_mode="UEFI", ostype="linux",
                                     platform=alibaba.PLATFORM).to_map()
    assert {k: wire[k] for k in ("Architecture", "BootMode", "OSType", "Platform")} == \
        {"Architecture": "arm64", "BootMode": "UEFI", "OSType": "linux", "Platform": "Others Linux"}


def test_a_failed_tasks_reason_and_an_images_snapshots_are_read_from_the_sdk_models():
    attribute = models.DescribeTaskAttributeResponseBody().from_map({"OperationProgressSet": {"OperationProgress": [
        {"OperationStatus": "Failed", "ErrorCode": "ImportImageFailed", "ErrorMsg": "no partition table"},
        {"OperationStatus": "Success", "ErrorCode": "", "ErrorMsg": ""}]}})
    assert alibaba.task_failure(attribute) == "ImportImageFailed: no partition table"
    assert alibaba.task_failure(models.DescribeTaskAttributeResponseBody()) == ""
    image = models.DescribeImagesResponseBodyImagesImage().from_map({
        "ImageId": "m-1", "Status": "Available", "DiskDeviceMappings": {"DiskDeviceMapping": [
            {"Type": "system", "SnapshotId": "s-1"}, {"Type": "data", "SnapshotId": ""}]}})
    assert alibaba._image_ref("cn-hangzhou", image).snapshot_ids == ("s-1",)
