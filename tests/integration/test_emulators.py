"""The IMS and CVM emulators, driven end to end through the unmodified official SDKs."""

from __future__ import annotations

import json

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkims.v2 import (
    BatchAddMembersRequest,
    BatchAddMembersRequestBody,
    BatchDeleteMembersRequest,
    CopyImageCrossRegionRequest,
    CopyImageCrossRegionRequestBody,
    CreateImageRequest,
    CreateImageRequestBody,
    GlanceDeleteImageRequest,
    GlanceListImageMembersRequest,
    GlanceShowImageRequest,
    ImsClient,
    ListImagesRequest,
    ListOsVersionsRequest,
    ShowJobProgressRequest,
    ShowJobRequest,
    TagKeyValue,
)
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from tests.emulators import CvmEmulator, ImsEmulator, Timing, fixtures
from tests.emulators.fixtures import cvm_client, ims_client
from tests.emulators.ims import DEFAULT_AGENCIES

pytestmark = pytest.mark.integration
ims_emulator = fixtures.ims_emulator  # until conftest provides them
cvm_emulator = fixtures.cvm_emulator

BEIJING, SHANGHAI = "cn-north-4", "cn-east-3"
GUANGZHOU, SHANGHAI_TC = "ap-guangzhou", "ap-shanghai"
OBS_BUCKET, OBS_KEY = "eulerpub-images", "openEuler-24.03-x86_64.qcow2"
COS_URL = "https://eulerpub-1250000000.cos.ap-guangzhou.myqcloud.com/openEuler-24.03-x86_64.qcow2"
OTHER_PROJECT = "0123456789abcdef0123456789abcdef"


# ---- Huawei IMS --------------------------------------------------------------------------------------------

def _create_body(**overrides) -> CreateImageRequestBody:
    fields = {"name": "openEuler-24.03-x86_64", "image_url": f"{OBS_BUCKET}:{OBS_KEY}", "min_disk": 40,
              "os_version": "openEuler 24.03 64bit", "type": "ECS", "architecture": "x86",
              "hw_firmware_type": "uefi", "image_tags": [TagKeyValue(key="eulerpub-build", value="b42")]}
    return CreateImageRequestBody(**{**fields, **overrides})


def _wait_job(client: ImsClient, job_id: str, polls: int = 10) -> list[str]:
    seen = []
    for _ in range(polls):
        job = client.show_job(ShowJobRequest(job_id=job_id))
        seen.append(job.status)
        if job.status in ("SUCCESS", "FAIL"):
            break
    return seen


def _import_active_image(emu: ImsEmulator, client: ImsClient) -> str:
    emu.objects.add((OBS_BUCKET, OBS_KEY))
    job_id = client.create_image(CreateImageRequest(body=_create_body())).job_id
    assert _wait_job(client, job_id)[-1] == "SUCCESS"
    return emu.jobs[job_id].image_id


def test_ims_accepts_signed_requests_and_rejects_a_wrong_secret(ims_emulator):
    versions = ims_client(ims_emulator, BEIJING).list_os_versions(ListOsVersionsRequest()).body
    assert "openEuler 24.03 64bit" in [v.os_version for p in versions for v in p.version_list]

    with pytest.raises(ClientRequestException) as caught:
        ims_client(ims_emulator, BEIJING, sk="not-the-secret").list_os_versions(ListOsVersionsRequest())
    assert caught.value.status_code == 401
    assert caught.value.error_code == "APIGW.0301"
    assert caught.value.error_msg.startswith("Incorrect IAM authentication information")
    assert caught.value.request_id
    assert [call.action for call in ims_emulator.requests] == ["ListOsVersions"]


def test_ims_rejects_a_stale_sdk_date_and_a_project_of_another_region(ims_emulator):
    client = ims_client(ims_emulator, BEIJING)
    with pytest.raises(ClientRequestException, match="X-Sdk-Date"):
        client.list_images(ListImagesRequest(x_sdk_date="20200101T000000Z"))

    credentials = ims_client(ims_emulator, SHANGHAI).get_credentials()  # Shanghai's project id...
    wrong = ImsClient.new_builder().with_credentials(credentials).with_endpoint(ims_emulator.endpoints[BEIJING])
    with pytest.raises(ClientRequestException) as caught:  # ...sent to Beijing
        wrong.build().list_images(ListImagesRequest())
    assert caught.value.status_code == 401
    assert len(ims_emulator.auth_failures) == 2


def test_ims_import_goes_init_running_success_and_is_listed_by_tag(ims_emulator):
    client = ims_client(ims_emulator, BEIJING)
    ims_emulator.objects.add((OBS_BUCKET, OBS_KEY))
    job_id = client.create_image(CreateImageRequest(body=_create_body(architecture="arm"))).job_id

    assert _wait_job(client, job_id) == ["INIT", "RUNNING", "SUCCESS"]
    image_id = client.show_job_progress(ShowJobProgressRequest(job_id=job_id)).entities.image_id
    shown = client.glance_show_image(GlanceShowImageRequest(image_id=image_id))
    assert (shown.status, shown.min_disk, shown.hw_firmware_type, shown.support_arm) == ("active", 40, "uefi", "true")
    listed = client.list_images(ListImagesRequest(imagetype="private", tag="eulerpub-build=b42", status="active"))
    assert [image.id for image in listed.images] == [image_id]
    assert client.list_images(ListImagesRequest(imagetype="private", tag="eulerpub-build=other")).images == []
    # after IMS's tag upgrade the filter is key=value: the old key.value form finds nothing
    assert client.list_images(ListImagesRequest(imagetype="private", tag="eulerpub-build.b42")).images == []
    assert ims_emulator.calls("CreateImage")[0].body["image_url"] == f"{OBS_BUCKET}:{OBS_KEY}"


def test_ims_import_fails_with_the_injected_reason(ims_emulator):
    ims_emulator.faults.add(kind="fail", action="CreateImage", reason="the image file is not a valid qcow2")
    client = ims_client(ims_emulator, BEIJING)
    ims_emulator.objects.add((OBS_BUCKET, OBS_KEY))
    job_id = client.create_image(CreateImageRequest(body=_create_body())).job_id

    assert _wait_job(client, job_id)[-1] == "FAIL"
    job = client.show_job(ShowJobRequest(job_id=job_id))
    assert job.fail_reason == "the image file is not a valid qcow2"
    assert ims_emulator.images[job.entities.image_id].status == "killed"


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"min_disk": 30}, "min_disk"),
    ({"architecture": "aarch64"}, "architecture"),
    ({"hw_firmware_type": "efi"}, "hw_firmware_type"),
    ({"os_version": "openEuler 99.03 64bit"}, "os_version"),
    ({"image_url": f"{OBS_BUCKET}:missing.qcow2"}, "does not exist"),
    ({"image_url": OBS_KEY}, "bucket:object"),
])
def test_ims_rejects_invalid_imports(ims_emulator, overrides, needle):
    ims_emulator.objects.add((OBS_BUCKET, OBS_KEY))
    with pytest.raises(ClientRequestException) as caught:
        ims_client(ims_emulator, BEIJING).create_image(CreateImageRequest(body=_create_body(**overrides)))
    assert (caught.value.status_code, caught.value.error_code) == (400, "IMG.0001")
    assert needle in caught.value.error_msg
    assert ims_emulator.images == {}


def test_ims_rejects_bad_image_names(ims_emulator):
    client = ims_client(ims_emulator, BEIJING)
    ims_emulator.objects.add((OBS_BUCKET, OBS_KEY))
    for name, code in (("x" * 129, "IMG.0002"), ("bad/name", "IMG.0003"), (" padded", "IMG.0003")):
        with pytest.raises(ClientRequestException) as caught:
            client.create_image(CreateImageRequest(body=_create_body(name=name)))
        assert caught.value.error_code == code


def test_ims_copy_to_second_region_then_share_then_delete(ims_emulator):
    beijing, shanghai = ims_client(ims_emulator, BEIJING), ims_client(ims_emulator, SHANGHAI)
    image_id = _import_active_image(ims_emulator, beijing)

    copy_body = CopyImageCrossRegionRequestBody(name="openEuler-24.03-x86_64", region=SHANGHAI,
                                                project_name=SHANGHAI, agency_name=DEFAULT_AGENCIES[0])
    job_id = beijing.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=image_id, body=copy_body)).job_id
    assert _wait_job(beijing, job_id)[-1] == "SUCCESS"
    copy_id = beijing.show_job(ShowJobRequest(job_id=job_id)).entities.image_id
    assert [i.id for i in shanghai.list_images(ListImagesRequest(imagetype="private")).images] == [copy_id]
    assert shanghai.glance_show_image(GlanceShowImageRequest(image_id=copy_id)).tags == ["eulerpub-build.b42"]

    share = BatchAddMembersRequestBody(images=[copy_id], projects=[OTHER_PROJECT])
    assert _wait_job(shanghai, shanghai.batch_add_members(BatchAddMembersRequest(body=share)).job_id)[-1] == "SUCCESS"
    members = shanghai.glance_list_image_members(GlanceListImageMembersRequest(image_id=copy_id)).members
    assert [m.member_id for m in members] == [OTHER_PROJECT]

    with pytest.raises(ClientRequestException, match="shared"):
        shanghai.glance_delete_image(GlanceDeleteImageRequest(image_id=copy_id))
    beijing.glance_delete_image(GlanceDeleteImageRequest(image_id=image_id))
    assert set(ims_emulator.images) == {copy_id}

    unshare = shanghai.batch_delete_members(BatchDeleteMembersRequest(body=share))  # the SDK reuses the add body
    assert _wait_job(shanghai, unshare.job_id)[-1] == "SUCCESS"
    assert shanghai.glance_list_image_members(GlanceListImageMembersRequest(image_id=copy_id)).members == []
    shanghai.glance_delete_image(GlanceDeleteImageRequest(image_id=copy_id))
    assert ims_emulator.images == {}


def test_ims_copy_to_a_stuck_region_never_finishes(ims_emulator):
    beijing = ims_client(ims_emulator, BEIJING)
    image_id = _import_active_image(ims_emulator, beijing)
    ims_emulator.faults.add(kind="stuck", action="CopyImageCrossRegion", region=SHANGHAI)
    body = CopyImageCrossRegionRequestBody(name="copy", region=SHANGHAI, project_name=SHANGHAI,
                                           agency_name=DEFAULT_AGENCIES[0])
    job_id = beijing.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=image_id, body=body)).job_id
    ims_emulator.finish_all()
    assert _wait_job(beijing, job_id, polls=8)[-1] == "RUNNING"


def test_ims_throttling_and_server_errors_surface_as_sdk_exceptions(ims_emulator):
    client = ims_client(ims_emulator, BEIJING)
    ims_emulator.faults.add(kind="throttle", action="ListImages", times=2)
    ims_emulator.faults.add(kind="server_error", action="ListOsVersions")
    for _ in range(2):
        with pytest.raises(ClientRequestException) as caught:
            client.list_images(ListImagesRequest())
        # The SDK's urllib3 Retry(status_forcelist=[429]) turns any 429 into a RetryError before the body is
        # read: the exception carries status 429 and error_code "429", never the APIGW.0308 body.
        assert (caught.value.status_code, caught.value.error_code) == (429, "429")
    assert client.list_images(ListImagesRequest()).images == []
    with pytest.raises(ServerResponseException):
        client.list_os_versions(ListOsVersionsRequest())
    assert [c.error for c in ims_emulator.requests] == ["APIGW.0308", "APIGW.0308", None, "EMU.0500"]


# ---- Tencent CVM -------------------------------------------------------------------------------------------

def _cvm_request(model: type, **params):
    request = model()
    request.from_json_string(json.dumps(params))
    return request


def _import_params(**overrides) -> dict:
    params = {"ImageName": "openEuler-24.03-x86_64", "ImageUrl": COS_URL, "Architecture": "x86_64",
              "OsType": "OpenEuler", "OsVersion": "24.03", "BootMode": "UEFI",
              "TagSpecification": [{"ResourceType": "image", "Tags": [{"Key": "eulerpub-build", "Value": "b42"}]}]}
    return {**params, **overrides}


def _describe(client: CvmClient, **params):
    return client.DescribeImages(_cvm_request(cvm_models.DescribeImagesRequest, **params))


def _wait_state(client: CvmClient, image_id: str, polls: int = 10) -> list[str]:
    seen = []
    for _ in range(polls):
        seen.append(_describe(client, ImageIds=[image_id]).ImageSet[0].ImageState)
        if seen[-1] not in ("IMPORTING", "SYNCING"):
            break
    return seen


def _import(emu: CvmEmulator, client: CvmClient, **overrides) -> str:
    """ImportImage; its answer has no ImageId by default (the API reference's example), so find it by name."""
    params = _import_params(**overrides)
    assert client.ImportImage(_cvm_request(cvm_models.ImportImageRequest, **params)).ImageId is None
    (image_id,) = [i.id for i in emu.images.values() if i.name == params["ImageName"]]
    return image_id


def _import_normal_image(emu: CvmEmulator, client: CvmClient) -> str:
    emu.objects.add(COS_URL)
    image_id = _import(emu, client)
    assert _wait_state(client, image_id)[-1] == "NORMAL"
    return image_id


def test_cvm_accepts_signed_requests_and_rejects_bad_credentials(cvm_emulator):
    os_list = cvm_client(cvm_emulator, GUANGZHOU).DescribeImportImageOs(cvm_models.DescribeImportImageOsRequest())
    assert "OpenEuler" in os_list.ImportImageOsListSupported.Linux

    with pytest.raises(TencentCloudSDKException) as caught:
        cvm_client(cvm_emulator, GUANGZHOU, secret_key="not-the-key").DescribeImages(
            cvm_models.DescribeImagesRequest())
    assert caught.value.get_code() == "AuthFailure.SignatureFailure"
    assert caught.value.get_request_id()
    with pytest.raises(TencentCloudSDKException, match="UnsupportedRegion"):
        cvm_client(cvm_emulator, "mars-north-1").DescribeImages(cvm_models.DescribeImagesRequest())
    assert [call.action for call in cvm_emulator.requests] == ["DescribeImportImageOs"]


def test_cvm_import_goes_importing_to_normal_with_tags(cvm_emulator):
    client = cvm_client(cvm_emulator, GUANGZHOU)
    cvm_emulator.objects.add(COS_URL)
    image_id = _import(cvm_emulator, client, Architecture="arm_64")

    assert _wait_state(client, image_id) == ["IMPORTING", "NORMAL"]
    found = _describe(client, Filters=[{"Name": "tag:eulerpub-build", "Values": ["b42"]},
                                       {"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}])
    assert found.TotalCount == 1
    image = found.ImageSet[0]
    assert (image.ImageId, image.Architecture, image.Platform) == (image_id, "arm", "OpenEuler")
    assert [(t.Key, t.Value) for t in image.Tags] == [("eulerpub-build", "b42")]
    assert cvm_emulator.images[image_id].boot_mode == "UEFI"
    assert _describe(client, Filters=[{"Name": "tag-key", "Values": ["nope"]}]).TotalCount == 0


def test_cvm_rejects_a_stale_timestamp():
    with CvmEmulator(max_clock_skew=-1) as emulator, pytest.raises(TencentCloudSDKException) as caught:
        cvm_client(emulator, GUANGZHOU).DescribeImages(cvm_models.DescribeImagesRequest())  # always too old
    assert caught.value.get_code() == "AuthFailure.SignatureExpire"


def test_cvm_finish_all_completes_imports_that_would_never_settle_by_polling():
    with CvmEmulator(timing=Timing(polls=None)) as emulator:
        client = cvm_client(emulator, GUANGZHOU)
        emulator.objects.add(COS_URL)
        image_id = _import(emulator, client)
        assert _wait_state(client, image_id, polls=4) == ["IMPORTING"] * 4
        emulator.finish_all()
        assert _wait_state(client, image_id) == ["NORMAL"]


def test_cvm_import_fails_with_injected_fault(cvm_emulator):
    cvm_emulator.faults.add(kind="fail", action="ImportImage", reason="unsupported partition table")
    client = cvm_client(cvm_emulator, GUANGZHOU)
    cvm_emulator.objects.add(COS_URL)
    image_id = _import(cvm_emulator, client)
    assert _wait_state(client, image_id)[-1] == "IMPORTFAILED"


@pytest.mark.parametrize(("overrides", "code"), [
    ({"Architecture": "aarch64"}, "InvalidParameterValue"),
    ({"ImageName": "x" * 61}, "InvalidParameterValue.TooLong"),
    ({"OsVersion": "99.99"}, "InvalidImageOsVersion.Unsupported"),
    ({"OsType": "Plan 9"}, "InvalidImageOsType.Unsupported"),
    ({"OsType": "Other Linux", "OsVersion": "-"}, "InvalidImageOsVersion.Unsupported"),  # the listing says "8"
    ({"ImageUrl": COS_URL.replace("openEuler", "open Euler")}, "InvalidParameter.InvalidParameterUrlError"),
    ({"ImageUrl": COS_URL.replace("openEuler", "openEulé")}, "InvalidParameter.InvalidParameterUrlError"),
    ({"ImageUrl": "https://example.com/disk.qcow2"}, "InvalidParameter.InvalidParameterUrlError"),
    ({"DryRun": True, "OsVersion": "99.99"}, "InvalidImageOsVersion.Unsupported"),  # a DryRun checks the same
    ({"DryRun": True, "ImageUrl": COS_URL + ".not-yet-uploaded"}, "DryRunOperation"),  # but fetches nothing
    ({"BootMode": "BIOS"}, "InvalidParameterValue"),
    ({"ImageUrl": COS_URL + ".missing"}, "InvalidParameterValue"),
    ({"TagSpecification": [{"ResourceType": "instance", "Tags": []}]}, "InvalidParameterValue"),
    ({"DryRun": True}, "DryRunOperation"),
])
def test_cvm_import_validation(cvm_emulator, overrides, code):
    cvm_emulator.objects.add(COS_URL)
    with pytest.raises(TencentCloudSDKException) as caught:
        cvm_client(cvm_emulator, GUANGZHOU).ImportImage(
            _cvm_request(cvm_models.ImportImageRequest, **_import_params(**overrides)))
    assert caught.value.get_code() == code
    assert cvm_emulator.images == {}


def test_cvm_import_answers_the_image_id_only_when_asked_and_refuses_what_the_region_cannot_import():
    with CvmEmulator(return_image_id=True, import_unsupported_regions=(SHANGHAI_TC,), arm_import=False) as emulator:
        emulator.objects.add(COS_URL)
        imported = cvm_client(emulator, GUANGZHOU).ImportImage(
            _cvm_request(cvm_models.ImportImageRequest, **_import_params()))
        assert imported.ImageId in emulator.images
        for region, overrides, code in ((SHANGHAI_TC, {}, "RegionAbilityLimit.UnsupportedToImportImage"),
                                        (GUANGZHOU, {"ImageName": "arm", "Architecture": "arm_64"},
                                         "UnsupportedOperation.ArmArchitecture")):
            with pytest.raises(TencentCloudSDKException) as caught:
                cvm_client(emulator, region).ImportImage(
                    _cvm_request(cvm_models.ImportImageRequest, **_import_params(DryRun=True, **overrides)))
            assert caught.value.get_code() == code
        assert len(emulator.images) == 1


def test_cvm_image_quota_bounds_imports_and_syncs():
    with CvmEmulator(image_quota=1) as emulator:
        client = cvm_client(emulator, GUANGZHOU)
        assert client.DescribeImageQuota(cvm_models.DescribeImageQuotaRequest()).ImageNumQuota == 1
        image_id = _import_normal_image(emulator, client)
        with pytest.raises(TencentCloudSDKException, match="ImageQuotaLimitExceeded"):
            client.ImportImage(_cvm_request(cvm_models.ImportImageRequest, **_import_params(ImageName="second")))
        cvm_client(emulator, SHANGHAI_TC).ImportImage(_cvm_request(cvm_models.ImportImageRequest,
                                                                    **_import_params()))  # another region's room
        with pytest.raises(TencentCloudSDKException, match="ImageQuotaLimitExceeded"):
            client.SyncImages(_cvm_request(cvm_models.SyncImagesRequest, ImageIds=[image_id],
                                           DestinationRegions=[SHANGHAI_TC]))


def test_cvm_describe_images_argument_rules(cvm_emulator):
    client = cvm_client(cvm_emulator, GUANGZHOU)
    image_id = _import_normal_image(cvm_emulator, client)
    for params, code in (({"ImageIds": [image_id], "Filters": [{"Name": "image-id", "Values": [image_id]}]},
                          "InvalidParameter"),
                         ({"Limit": 101}, "InvalidParameterValue"),
                         ({"ImageIds": ["ami-123"]}, "InvalidImageId.Malformed"),
                         ({"Filters": [{"Name": "colour", "Values": ["red"]}]}, "InvalidFilter")):
        with pytest.raises(TencentCloudSDKException) as caught:
            _describe(client, **params)
        assert caught.value.get_code() == code
    with pytest.raises(TencentCloudSDKException, match=r"InvalidImageName\.Duplicate"):
        client.ImportImage(_cvm_request(cvm_models.ImportImageRequest, **_import_params()))


def test_cvm_sync_to_other_regions_with_one_stuck(cvm_emulator):
    guangzhou = cvm_client(cvm_emulator, GUANGZHOU)
    image_id = _import_normal_image(cvm_emulator, guangzhou)
    cvm_emulator.faults.add(kind="stuck", action="SyncImages", region="ap-beijing")

    synced = guangzhou.SyncImages(_cvm_request(cvm_models.SyncImagesRequest, ImageIds=[image_id],
                                               DestinationRegions=[SHANGHAI_TC, "ap-beijing"],
                                               ImageSetRequired=True))
    by_region = {item.Region: item.ImageId for item in synced.ImageSet}
    assert set(by_region) == {SHANGHAI_TC, "ap-beijing"}
    assert _wait_state(cvm_client(cvm_emulator, SHANGHAI_TC), by_region[SHANGHAI_TC]) == ["SYNCING", "NORMAL"]
    assert _wait_state(cvm_client(cvm_emulator, "ap-beijing"), by_region["ap-beijing"], polls=5)[-1] == "SYNCING"
    with pytest.raises(TencentCloudSDKException, match=r"InvalidImageId\.IncorrectState"):  # a sync is running
        guangzhou.DeleteImages(_cvm_request(cvm_models.DeleteImagesRequest, ImageIds=[image_id]))
    with pytest.raises(TencentCloudSDKException, match=r"InvalidRegion\.NotFound"):
        guangzhou.SyncImages(_cvm_request(cvm_models.SyncImagesRequest, ImageIds=[image_id],
                                          DestinationRegions=["ap-atlantis"]))


def test_cvm_share_blocks_delete_until_cancelled(cvm_emulator):
    client = cvm_client(cvm_emulator, GUANGZHOU)
    image_id = _import_normal_image(cvm_emulator, client)

    def share(permission: str) -> None:
        client.ModifyImageSharePermission(_cvm_request(cvm_models.ModifyImageSharePermissionRequest,
                                                       ImageId=image_id, AccountIds=["100000000002"],
                                                       Permission=permission))

    share("SHARE")
    permissions = client.DescribeImageSharePermission(
        _cvm_request(cvm_models.DescribeImageSharePermissionRequest, ImageId=image_id)).SharePermissionSet
    assert [p.AccountId for p in permissions] == ["100000000002"]
    delete = _cvm_request(cvm_models.DeleteImagesRequest, ImageIds=[image_id])
    with pytest.raises(TencentCloudSDKException, match=r"InvalidImageId\.InShared"):
        client.DeleteImages(delete)
    share("CANCEL")
    client.DeleteImages(delete)
    assert cvm_emulator.images == {}


def test_cvm_throttling_surfaces_as_request_limit_exceeded(cvm_emulator):
    client = cvm_client(cvm_emulator, GUANGZHOU)
    cvm_emulator.faults.add(kind="throttle", action="DescribeImages", times=1)
    with pytest.raises(TencentCloudSDKException) as caught:
        client.DescribeImages(cvm_models.DescribeImagesRequest())
    assert caught.value.get_code() == "RequestLimitExceeded"
    assert client.DescribeImages(cvm_models.DescribeImagesRequest()).TotalCount == 0
    assert [c.error for c in cvm_emulator.calls("DescribeImages")] == ["RequestLimitExceeded", None]
