"""The ECS emulator against the unmodified alibabacloud SDK: signature, timestamps, nonces, field rules, states."""

from __future__ import annotations

import pytest
from alibabacloud_ecs20140526 import models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.emulators import EcsEmulator, Timing
from tests.emulators.fixtures import ecs_client, ecs_emulator  # noqa: F401

pytestmark = pytest.mark.integration
REGION = "cn-hangzhou"


def _import(emulator: EcsEmulator, **overrides) -> models.ImportImageResponse:
    disk = models.ImportImageRequestDiskDeviceMapping(ossbucket="b", ossobject="k.qcow2", format="QCOW2",
                                                      disk_image_size=20)
    fields = {"region_id": REGION, "image_name": "openEuler-24.03", "architecture": "x86_64",
              "platform": "Others Linux", "disk_device_mapping": [disk], **overrides}
    return ecs_client(emulator, REGION).import_image(models.ImportImageRequest(**fields))


def _code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


def test_signed_requests_pass_and_a_wrong_secret_does_not(ecs_emulator):  # noqa: F811
    listed = ecs_client(ecs_emulator, REGION).describe_images(models.DescribeImagesRequest(region_id=REGION))
    assert listed.body.total_count == 0

    with pytest.raises(ClientException) as excinfo:
        ecs_client(ecs_emulator, REGION, secret="wrong").describe_images(
            models.DescribeImagesRequest(region_id=REGION))

    assert _code(excinfo) == "SignatureDoesNotMatch" and ecs_emulator.auth_failures
    assert len(ecs_emulator.requests) == 1  # only the verified request is logged


def test_a_stale_timestamp_and_a_reused_nonce_are_refused(ecs_emulator, monkeypatch):  # noqa: F811
    from alibabacloud_tea_openapi import client as openapi_client

    monkeypatch.setattr(openapi_client.Utils, "get_timestamp", staticmethod(lambda: "2020-01-01T00:00:00Z"))
    with pytest.raises(ClientException) as stale:
        ecs_client(ecs_emulator, REGION).describe_images(models.DescribeImagesRequest(region_id=REGION))
    monkeypatch.undo()
    monkeypatch.setattr(openapi_client.Utils, "get_nonce", staticmethod(lambda: "the-same-nonce"))
    client = ecs_client(ecs_emulator, REGION)
    client.describe_images(models.DescribeImagesRequest(region_id=REGION))
    with pytest.raises(ClientException) as reused:
        client.describe_images(models.DescribeImagesRequest(region_id=REGION))

    assert (_code(stale), _code(reused)) == ("InvalidTimeStamp.Expired", "SignatureNonceUsed")


def test_an_import_is_creating_then_available_and_describe_lists_only_available_by_default():
    with EcsEmulator(object_size=lambda bucket, key: 1024, timing=Timing(polls=3)) as emulator:
        image_id = _import(emulator, client_token="t1").body.image_id
        assert _import(emulator, client_token="t1").body.image_id == image_id  # ClientToken: the same image
        client = ecs_client(emulator, REGION)
        default = client.describe_images(models.DescribeImagesRequest(region_id=REGION, image_id=image_id))
        creating = client.describe_images(models.DescribeImagesRequest(region_id=REGION, image_id=image_id,
                                                                       status="Creating,Available"))
        done = client.describe_images(models.DescribeImagesRequest(region_id=REGION, image_id=image_id))

        assert default.body.total_count == 0  # DescribeImagesRequest.Status defaults to Available
        assert creating.body.images.image[0].status == "Creating"
        assert done.body.images.image[0].status == "Available"
        assert len(emulator.images) == 1


@pytest.mark.parametrize(("overrides", "code"), [
    ({"architecture": "aarch64"}, "InvalidArchitecture.Malformed"),
    ({"architecture": "arm64", "boot_mode": "BIOS"}, "InvalidBootMode.NotSupported"),
    ({"platform": "openEuler"}, "InvalidPlatform.ValueNotSupported"),
    ({"image_name": "aliyun-image"}, "InvalidImageName.Malformed"),
    ({"image_name": "1-starts-with-a-digit"}, "InvalidImageName.Malformed"),
    ({"description": "https://example.com"}, "InvalidDescription.Malformed"),
])
def test_imports_the_sdk_model_refuses_are_refused(overrides, code):
    with EcsEmulator(object_size=lambda bucket, key: 1024) as emulator, pytest.raises(ClientException) as excinfo:
        _import(emulator, **overrides)
    assert _code(excinfo) == code and emulator.images == {}


def test_a_missing_object_a_missing_role_and_throttling():
    with EcsEmulator(object_size=lambda bucket, key: None) as emulator:
        with pytest.raises(ClientException) as missing:
            _import(emulator)
        emulator.import_role = None
        with pytest.raises(ClientException) as no_role:
            _import(emulator)
        emulator.faults.add("throttle", action="DescribeImages")
        with pytest.raises(ClientException) as throttled:
            ecs_client(emulator, REGION).describe_images(models.DescribeImagesRequest(region_id=REGION))

    assert (_code(missing), _code(no_role), _code(throttled)) == \
        ("InvalidOSSObject.NotFound", "NoSetRoletoECSServiceAccount", "Throttling.User")
    assert missing.value.status_code == 400  # ImportImage's error table: 400, not 404


def test_a_shared_image_is_not_deleted_until_unshared():
    with EcsEmulator(object_size=lambda bucket, key: 1024, timing=Timing(polls=1)) as emulator:
        image_id = _import(emulator).body.image_id
        client = ecs_client(emulator, REGION)
        client.describe_images(models.DescribeImagesRequest(region_id=REGION, image_id=image_id))
        client.modify_image_share_permission(models.ModifyImageSharePermissionRequest(
            region_id=REGION, image_id=image_id, add_account=["1000000000000002"]))
        with pytest.raises(ClientException) as shared:
            client.delete_image(models.DeleteImageRequest(region_id=REGION, image_id=image_id))
        client.modify_image_share_permission(models.ModifyImageSharePermissionRequest(
            region_id=REGION, image_id=image_id, remove_account=["1000000000000002"]))
        client.delete_image(models.DeleteImageRequest(region_id=REGION, image_id=image_id))

        assert _code(shared) == "ImageUseShared" and shared.value.status_code == 403 and emulator.images == {}


def test_a_failed_import_task_carries_its_error_and_an_image_being_imported_is_not_deleted():
    with EcsEmulator(object_size=lambda bucket, key: 1024, timing=Timing(polls=3)) as emulator:
        emulator.faults.add("fail", action="ImportImage", reason="The image file has no partition table.")
        answer = _import(emulator).body
        client = ecs_client(emulator, REGION)
        with pytest.raises(ClientException) as importing:
            client.delete_image(models.DeleteImageRequest(region_id=REGION, image_id=answer.image_id))
        tasks = client.describe_tasks(models.DescribeTasksRequest(region_id=REGION, task_action="ImportImage",
                                                                  resource_ids=[answer.image_id])).body
        running = client.describe_task_attribute(models.DescribeTaskAttributeRequest(
            region_id=REGION, task_id=answer.task_id)).body
        failed = client.describe_task_attribute(models.DescribeTaskAttributeRequest(
            region_id=REGION, task_id=answer.task_id)).body

    assert _code(importing) == "ImageIsImporting"
    assert [(t.task_id, t.resource_id, t.task_status) for t in tasks.task_set.task] == \
        [(answer.task_id, answer.image_id, "Processing")]
    assert running.task_status == "Processing" and failed.task_status == "Failed"
    (progress,) = failed.operation_progress_set.operation_progress
    assert (progress.operation_status, progress.error_code, progress.error_msg) == \
        ("Failed", "ImportImageFailed", "The image file has no partition table.")
    assert emulator.images[answer.image_id].status == "CreateFailed" and emulator.snapshots == {}


def test_an_imported_image_keeps_a_snapshot_that_outlives_deleteimage_until_deletesnapshot():
    with EcsEmulator(object_size=lambda bucket, key: 1024, timing=Timing(polls=1)) as emulator:
        image_id = _import(emulator).body.image_id
        client = ecs_client(emulator, REGION)
        (image,) = client.describe_images(models.DescribeImagesRequest(region_id=REGION, image_id=image_id)
                                          ).body.images.image
        snapshot_id = image.disk_device_mappings.disk_device_mapping[0].snapshot_id
        client.tag_resources(models.TagResourcesRequest(region_id=REGION, resource_type="snapshot",
                                                        resource_id=[snapshot_id],
                                                        tag=[models.TagResourcesRequestTag(key="k", value="v")]))
        with pytest.raises(ClientException) as in_use:
            client.delete_snapshot(models.DeleteSnapshotRequest(snapshot_id=snapshot_id))
        client.delete_image(models.DeleteImageRequest(region_id=REGION, image_id=image_id))
        left = client.describe_snapshots(models.DescribeSnapshotsRequest(
            region_id=REGION, tag=[models.DescribeSnapshotsRequestTag(key="k", value="v")])).body
        client.delete_snapshot(models.DeleteSnapshotRequest(snapshot_id=snapshot_id))
        client.delete_snapshot(models.DeleteSnapshotRequest(snapshot_id=snapshot_id))  # gone: ignored

    assert snapshot_id.startswith("s-") and _code(in_use) == "SnapshotCreatedImage"
    assert [(s.snapshot_id, s.usage) for s in left.snapshots.snapshot] == [(snapshot_id, "none")]
    assert {t.tag_key: t.tag_value for t in left.snapshots.snapshot[0].tags.tag} == {"k": "v"}
    assert emulator.images == {} and emulator.snapshots == {}
