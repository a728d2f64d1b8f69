"""The AWS adapter: EBS direct or S3 + VM Import, register_image, copy_image, launch permissions.

Credentials come from boto3's standard chain only; `AWS_ENDPOINT_URL` (and boto3's per-service variants)
redirect every client, which is how the tests point it at moto.

The preflight only reads (so `--dry-run` runs it too): credentials, regions, the bucket and the vmimport role for
`--upload s3` (the upload step creates a missing role), S3's 10 object tags, and, when sharing, the account
settings that would make sharing fail after the upload (EBS encryption by default, block public access).
ARNs carry the region's partition (`partition`).

Prune's leftovers: EBS snapshots of this account tagged `managed-by=eulerpub` that no AMI of the account
references (disabled AMIs included), and the uploads (`--upload s3`) in the bucket it is given. Deleting an image
deregisters it with DeleteAssociatedSnapshots.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import ClientError

from eulerpub import retry
from eulerpub.clouds import aws_vmimport, boto, diskfile, objectstore
from eulerpub.clouds.base import (
    MANAGED_BY,
    TAG_BUILD_ID,
    TAG_MANAGED_BY,
    TAG_PROFILE,
    Checkpoint,
    ImageRef,
    ImageState,
    Imported,
    Leftover,
    LeftoverKind,
    PercentCallback,
    ProgressCallback,
    PublishSpec,
    Upload,
    pick_usable,
    whole_gib,
)
from eulerpub.clouds.ebs import EbsUploader
from eulerpub.clouds.wait import JobStatus, wait_for
from eulerpub.errors import CloudError, UsageError
from eulerpub.manifest import sha256_file

log = logging.getLogger(__name__)

CLOUD = "aws"
ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64"}  # eulerpub's arch -> EC2's Architecture
# UEFI where the instance type can do it, BIOS otherwise, on x86_64; Graviton boots UEFI only.
DEFAULT_BOOT_MODE = {"x86_64": "uefi-preferred", "aarch64": "uefi"}
ROOT_DEVICE = "/dev/xvda"
IMPORT_FORMATS = {"raw": "RAW", "vmdk": "VMDK", "vhd": "VHD"}  # what VM Import reads; qcow2 is converted to VMDK
CLIENT_TOKEN_MAX = 64  # EC2's limit on ClientToken length
IMAGE_STATES: dict[str, ImageState] = {"available": "available", "pending": "pending", "failed": "failed",
                                       "error": "failed", "invalid": "failed", "deregistered": "failed",
                                       "disabled": "failed", "transient": "pending"}
DEFAULT_PUBLIC_AMI_QUOTA = 5  # public AMIs per region unless AWS raised it for the account
# GetEbsDefaultKmsKeyId's answer while the account has not chosen a key of its own: the AWS managed key, whose
# snapshots cannot be shared with other accounts (EC2 User Guide, "Share an Amazon EBS snapshot").
AWS_MANAGED_EBS_KEY = "alias/aws/ebs"
# An image id fresh from copy_image may not be visible yet (eventual consistency): tolerate "not found" this long.
NOT_FOUND_GRACE_POLLS = 4


def client_token(token: str) -> str:
    """A ClientToken within EC2's 64 characters: the token itself, or its hash when longer."""
    return token if len(token) <= CLIENT_TOKEN_MAX else "eulerpub-" + hashlib.sha256(token.encode()).hexdigest()[:48]


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _image_ref(region: str, image: dict[str, Any]) -> ImageRef:
    snapshots = tuple(m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                      if m.get("Ebs", {}).get("SnapshotId"))
    return ImageRef(cloud=CLOUD, region=region, image_id=image["ImageId"], name=image.get("Name", ""),
                    state=IMAGE_STATES.get(image.get("State", ""), "pending"), snapshot_ids=snapshots,
                    tags={t["Key"]: t["Value"] for t in image.get("Tags", [])}, created=image.get("CreationDate", ""))


def partition(region: str) -> str:
    """The region's partition (aws, aws-cn, aws-us-gov...), as botocore's endpoint data says: ARNs start with it."""
    return boto3.session.Session().get_partition_for_region(region)


def known_regions() -> set[str]:
    """Every EC2 region botocore knows, in every partition (offline: no DNS lookups for a typo)."""
    session = boto3.session.Session()
    return {r for p in session.get_available_partitions() for r in session.get_available_regions("ec2", p)}


class AwsAdapter:
    name = CLOUD
    leftover_kinds: tuple[LeftoverKind, ...] = ("snapshot", "object")

    def __init__(self) -> None:
        self.clients = boto.ClientCache(pool_size=32)

    def _ec2(self, region: str) -> Any:
        return self.clients.get("ec2", region)

    def _call(self, region: str | None, operation: str, fn: Any, resource_id: str | None = None, **kw: Any) -> Any:
        return boto.call(CLOUD, region, operation, fn, resource_id, **kw)

    def _store(self, region: str) -> tuple[Any, objectstore.StoreSettings]:
        return self.clients.get("s3", region), objectstore.StoreSettings(cloud=CLOUD, region=region)

    # -- preflight --------------------------------------------------------------------------------------

    def preflight(self, spec: PublishSpec) -> None:
        unknown = [r for r in spec.regions if r not in known_regions()]
        if unknown:
            raise UsageError(f"unknown AWS region {unknown[0]!r}; see `aws ec2 describe-regions`")
        if spec.identity.arch not in ARCHITECTURES:
            raise UsageError(f"AWS has no {spec.identity.arch} instances; publish x86_64 or aarch64 images")
        identity = self._call(spec.source_region, "sts:GetCallerIdentity",
                              self.clients.get("sts", spec.source_region).get_caller_identity)
        log.info("publishing as AWS account %s", identity["Account"])
        regions = self._call(spec.source_region, "describe_regions", self._ec2(spec.source_region).describe_regions,
                             AllRegions=True)["Regions"]
        enabled = {r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in"}
        for region in spec.regions:
            if region not in enabled:
                raise UsageError(f"region {region} is not enabled for this account; enable it or drop it")
        if spec.upload == "s3":
            client, settings = self._store(spec.source_region)
            assert spec.bucket  # make_spec demands one for s3
            objectstore.check_bucket(client, settings, spec.bucket)
            objectstore.object_tags(spec.all_tags)  # S3's 10 tags per object, before anything is uploaded
            if not aws_vmimport.check_role(self.clients.get("iam", spec.source_region)):
                log.info("the '%s' role VM Import needs is missing; the upload step creates it",
                         aws_vmimport.ROLE_NAME)
        if spec.share_with or spec.public:
            for region in spec.regions:
                self._check_shareable(region, spec.public)

    def _check_shareable(self, region: str, public: bool) -> None:
        """Sharing fails only after the upload when the account's settings forbid it: ask them first."""
        ec2 = self._ec2(region)
        encrypted = self._setting(region, "GetEbsEncryptionByDefault", ec2.get_ebs_encryption_by_default,
                                  "EbsEncryptionByDefault")
        if encrypted:
            turn_off = f"aws ec2 disable-ebs-encryption-by-default --region {region}"
            if public:
                raise UsageError(f"EBS encryption by default is on in {region}, so the image's snapshot would be "
                                 f"encrypted, and AWS never makes an encrypted snapshot public; turn it off "
                                 f"({turn_off}) or drop --public")
            key = self._setting(region, "GetEbsDefaultKmsKeyId", ec2.get_ebs_default_kms_key_id, "KmsKeyId")
            if key is None:
                return
            if self._aws_managed_key(region, key):
                raise UsageError(f"EBS encryption by default is on in {region} with the AWS managed key (aws/ebs), "
                                 "and AWS does not let a snapshot encrypted with it be shared; turn it off "
                                 f"({turn_off}), make a customer managed key the default (aws ec2 "
                                 "modify-ebs-default-kms-key-id), or drop --share")
            log.warning("%s: snapshots are encrypted with the KMS key %s; the accounts the image is shared with "
                        "need permission to use that key to launch or copy it", region, key)
        if public:
            self._check_public_allowed(region)

    def _setting(self, region: str, action: str, fn: Any, field: str) -> Any:
        """An account setting the preflight reads, or None (with a warning) when these credentials may not read it:
        a check that needs a permission the publish itself does not need must not stop the publish."""
        with boto.errors(CLOUD, region, action):
            try:
                return retry.call(fn)[field]
            except ClientError as exc:
                if boto.error_code(exc) not in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
                    raise
        log.warning("%s: these credentials may not call ec2:%s, so that setting is not checked before the upload; "
                    "if it forbids sharing, sharing fails afterwards", region, action)
        return None

    def _aws_managed_key(self, region: str, key: str) -> bool:
        """True if `key` (GetEbsDefaultKmsKeyId's answer) is the AWS managed aws/ebs key, which cannot be shared."""
        if key.endswith(AWS_MANAGED_EBS_KEY):
            return True
        kms = self.clients.get("kms", region)
        with boto.errors(CLOUD, region, "kms:DescribeKey", key):
            try:
                return retry.call(kms.describe_key, KeyId=key)["KeyMetadata"].get("KeyManager") == "AWS"
            except ClientError as exc:
                if boto.error_code(exc) not in ("AccessDeniedException", "AccessDenied"):
                    raise
        log.warning("%s: cannot tell whether the default EBS key %s is AWS managed (no kms:DescribeKey); if it "
                    "is, sharing fails after the upload", region, key)
        return False

    def _check_public_allowed(self, region: str) -> None:
        ec2 = self._ec2(region)
        state = self._call(region, "get_image_block_public_access_state",
                           ec2.get_image_block_public_access_state)["ImageBlockPublicAccessState"]
        if state != "unblocked":
            raise UsageError(f"Block Public Access for AMIs is on in {region}, so --public would fail; turn it off "
                             f"(aws ec2 disable-image-block-public-access --region {region}) or drop --public")
        snapshots = self._setting(region, "GetSnapshotBlockPublicAccessState",
                                  ec2.get_snapshot_block_public_access_state, "State")
        if snapshots not in (None, "unblocked"):
            raise UsageError(f"Block Public Access for snapshots is {snapshots} in {region}, so the image's "
                             "snapshot cannot be made public and --public would fail after the upload; unblock it "
                             f"(aws ec2 disable-snapshot-block-public-access --region {region}) or drop --public")
        public = self._call(region, "describe_images", ec2.describe_images, Owners=["self"],
                            Filters=[{"Name": "is-public", "Values": ["true"]}])["Images"]
        if len(public) >= DEFAULT_PUBLIC_AMI_QUOTA:
            log.warning("%s: the account already has %d public AMIs; the default quota is %d, so making one more "
                        "public may fail unless the quota was raised", region, len(public), DEFAULT_PUBLIC_AMI_QUOTA)

    # -- finding images ---------------------------------------------------------------------------------

    def _describe(self, region: str, filters: list[dict[str, Any]]) -> list[ImageRef]:
        images = self._call(region, "describe_images", self._ec2(region).describe_images, Owners=["self"],
                            Filters=filters)["Images"]
        return sorted((_image_ref(region, i) for i in images), key=lambda i: i.created, reverse=True)

    def find_image(self, region: str, build_id: str) -> ImageRef | None:
        return pick_usable(self._describe(region, [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}]))

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        filters = [{"Name": "name", "Values": [name]}] if name else [
            {"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY]}]
        if profile:
            filters.append({"Name": f"tag:{TAG_PROFILE}", "Values": [profile]})
        return self._describe(region, filters)

    # -- upload -----------------------------------------------------------------------------------------

    def upload(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        if spec.upload == "s3":
            return self._upload_object(spec, checkpoint, progress)
        return self._upload_snapshot(spec, checkpoint, progress)

    def _upload_snapshot(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        raw = diskfile.as_format(spec.image, "raw")
        uploader = EbsUploader(
            self.clients.get("ebs", spec.source_region), self._ec2(spec.source_region), spec.source_region, raw,
            volume_size=spec.image.virtual_size, token_base=f"eulerpub-{spec.identity.build_id}-"
            f"{spec.image.sha256[:16]}"[:CLIENT_TOKEN_MAX - 4], tags={**spec.all_tags, "Name": spec.name},
            description=f"{spec.name} (eulerpub build {spec.identity.build_id})", checkpoint=checkpoint,
            progress=progress)
        result = uploader.run()
        diskfile.discard_conversion(spec.image, "raw")
        return Upload(kind="snapshot", id=result.snapshot_id, sent_bytes=result.sent_bytes)

    def _upload_object(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        target = spec.image.format if spec.image.format in IMPORT_FORMATS else "vmdk"
        path = diskfile.as_format(spec.image, target)  # type: ignore[arg-type]
        key = spec.object_key if path == spec.image.path else f"{spec.object_key}.{target}"
        sha256 = spec.image.sha256 if path == spec.image.path else sha256_file(path)
        client, settings = self._store(spec.source_region)
        assert spec.bucket
        aws_vmimport.ensure_role(self.clients.get("iam", spec.source_region), spec.bucket,
                                 partition(spec.source_region))
        stored = objectstore.upload_file(client, settings, spec.bucket, key, path, size=path.stat().st_size,
                                         sha256=sha256, checkpoint=checkpoint, progress=progress,
                                         tags=spec.all_tags)
        diskfile.discard_conversion(spec.image, target)  # type: ignore[arg-type]
        return Upload(kind="object", id=key, bucket=spec.bucket, sent_bytes=stored.sent_bytes)

    # -- import -----------------------------------------------------------------------------------------

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        if upload.kind == "snapshot":
            return upload.id  # EBS direct: the snapshot is the import
        fmt = IMPORT_FORMATS.get(upload.id.rsplit(".", 1)[-1], IMPORT_FORMATS.get(spec.image.format, "RAW"))
        response = self._call(spec.source_region, "import_snapshot", self._ec2(spec.source_region).import_snapshot,
                              upload.id, ClientToken=client_token(token), RoleName=aws_vmimport.ROLE_NAME,
                              Description=f"{spec.name} (eulerpub build {spec.identity.build_id})",
                              DiskContainer={"Format": fmt, "Description": spec.name,
                                             "UserBucket": {"S3Bucket": upload.bucket, "S3Key": upload.id}},
                              TagSpecifications=[{"ResourceType": "import-snapshot-task",
                                                  "Tags": tag_list(spec.all_tags)}])
        log.info("%s: import task %s started", spec.source_region, response["ImportTaskId"])
        return response["ImportTaskId"]

    def wait_import(self, spec: PublishSpec, task_id: str, progress: PercentCallback) -> Imported:
        region, ec2 = spec.source_region, self._ec2(spec.source_region)
        if task_id.startswith("snap-"):
            snapshot_id = self._wait_snapshot(spec, task_id, progress)
        else:
            def describe() -> JobStatus[str]:
                tasks = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"]
                if not tasks:
                    return JobStatus("failed", detail="the import task is gone")
                detail = tasks[0].get("SnapshotTaskDetail", {})
                status, message = detail.get("Status", ""), detail.get("StatusMessage", "")
                percent = int(detail["Progress"]) if str(detail.get("Progress", "")).isdigit() else None
                if status == "completed":
                    return JobStatus("done", 100, message, detail["SnapshotId"])
                if status in ("error", "deleting", "deleted"):
                    return JobStatus("failed", percent, message or status)
                return JobStatus("running", percent, message or status)

            with boto.errors(CLOUD, region, "describe_import_snapshot_tasks", task_id):
                snapshot_id = wait_for(describe, cloud=CLOUD, region=region, what="import", resource_id=task_id,
                                       params=spec.wait, progress=progress)
            # The task's tags are not the snapshot's: tag it so prune and find-by-tag see it.
            self._call(region, "create_tags", ec2.create_tags, snapshot_id, Resources=[snapshot_id],
                       Tags=tag_list({**spec.all_tags, "Name": spec.name}))
            snapshot_id = self._wait_snapshot(spec, snapshot_id, progress)
        return Imported(snapshot_id=snapshot_id)

    def _wait_snapshot(self, spec: PublishSpec, snapshot_id: str, progress: PercentCallback) -> str:
        region, ec2 = spec.source_region, self._ec2(spec.source_region)

        def describe() -> JobStatus[str]:
            snapshots = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
            if not snapshots:
                return JobStatus("failed", detail="the snapshot is gone")
            snapshot = snapshots[0]
            percent = str(snapshot.get("Progress", "")).rstrip("%")
            state = snapshot.get("State")
            if state == "completed":
                return JobStatus("done", 100, result=snapshot_id)
            if state in ("error", "recoverable"):
                return JobStatus("failed", detail=snapshot.get("StateMessage", state))
            return JobStatus("running", int(percent) if percent.isdigit() else None, state or "")

        with boto.errors(CLOUD, region, "describe_snapshots", snapshot_id):
            return wait_for(describe, cloud=CLOUD, region=region, what="snapshot", resource_id=snapshot_id,
                            params=spec.wait, progress=progress)

    # -- the image --------------------------------------------------------------------------------------

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        existing = self.find_image(spec.source_region, spec.identity.build_id)
        if existing is not None:
            return existing
        if not imported.snapshot_id:
            raise CloudError(CLOUD, spec.source_region, "register_image", "the import produced no snapshot")
        arch = spec.identity.arch
        boot_mode = spec.boot_mode or DEFAULT_BOOT_MODE[arch]
        if arch == "aarch64" and boot_mode != "uefi":
            raise UsageError(f"arm64 AMIs boot with UEFI only; drop --boot-mode {boot_mode}")
        region, ec2 = spec.source_region, self._ec2(spec.source_region)
        response = self._call(
            region, "register_image", ec2.register_image, imported.snapshot_id,
            Name=spec.name, Description=f"{spec.name} (eulerpub build {spec.identity.build_id})",
            Architecture=ARCHITECTURES[arch], RootDeviceName=ROOT_DEVICE, VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": ROOT_DEVICE, "Ebs": {
                "SnapshotId": imported.snapshot_id, "VolumeSize": whole_gib(spec.image.virtual_size),
                "VolumeType": "gp3", "DeleteOnTermination": True}}],
            BootMode=boot_mode, EnaSupport=True, SriovNetSupport="simple", ImdsSupport="v2.0",
            TagSpecifications=[{"ResourceType": "image", "Tags": tag_list(spec.all_tags)}])
        log.info("%s: registered %s as %s", region, spec.name, response["ImageId"])
        return ImageRef(CLOUD, region, response["ImageId"], spec.name, "pending", (imported.snapshot_id,),
                        spec.all_tags)

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        tags = tag_list(spec.all_tags)
        response = self._call(
            region, "copy_image", self._ec2(region).copy_image, source.image_id, SourceImageId=source.image_id,
            SourceRegion=source.region, Name=spec.name, ClientToken=client_token(token), CopyImageTags=True,
            Description=f"{spec.name} (eulerpub build {spec.identity.build_id})",
            TagSpecifications=[{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}])
        log.info("%s: copying %s from %s as %s", region, source.image_id, source.region, response["ImageId"])
        return response["ImageId"]

    def wait_image(self, spec: PublishSpec, region: str, handle: str, progress: PercentCallback) -> ImageRef:
        ec2 = self._ec2(region)
        misses = [0]

        def describe() -> JobStatus[ImageRef]:
            try:
                images = ec2.describe_images(ImageIds=[handle])["Images"]
            except ClientError as exc:
                if boto.error_code(exc) != "InvalidAMIID.NotFound":
                    raise
                images = []
            if not images:
                misses[0] += 1
                if misses[0] > NOT_FOUND_GRACE_POLLS:
                    return JobStatus("failed", detail="the image does not exist")
                return JobStatus("running", detail="not visible yet")
            image = _image_ref(region, images[0])
            if image.state == "available":
                return JobStatus("done", 100, result=image)
            if image.state == "failed":
                return JobStatus("failed", detail=images[0].get("StateReason", {}).get("Message", "failed"))
            return JobStatus("running", detail=images[0].get("State", ""))

        with boto.errors(CLOUD, region, "describe_images", handle):
            return wait_for(describe, cloud=CLOUD, region=region, what="image", resource_id=handle,
                            params=spec.wait, progress=progress)

    # -- sharing and cleanup ----------------------------------------------------------------------------

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        ec2, region = self._ec2(image.region), image.region
        grants = [{"UserId": a} for a in accounts] + ([{"Group": "all"}] if public else [])
        if not grants:
            return []
        self._call(region, "modify_image_attribute", ec2.modify_image_attribute, image.image_id,
                   ImageId=image.image_id, LaunchPermission={"Add": grants})
        for snapshot_id in image.snapshot_ids:  # without this, accounts can launch but not copy the AMI
            extra = {"GroupNames": ["all"]} if public else {}
            self._call(region, "modify_snapshot_attribute", ec2.modify_snapshot_attribute, snapshot_id,
                       SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add",
                       **({"UserIds": list(accounts)} if accounts else {}), **extra)
        now = self._call(region, "describe_image_attribute", ec2.describe_image_attribute, image.image_id,
                         ImageId=image.image_id, Attribute="launchPermission")["LaunchPermissions"]
        return sorted({p["UserId"] for p in now if "UserId" in p} | ({"public"} if {"Group": "all"} in now else set()))

    def discard_upload(self, spec: PublishSpec, upload: Upload) -> None:
        if upload.kind != "object" or not upload.bucket:
            return
        client, settings = self._store(spec.source_region)
        objectstore.delete_object(client, settings, upload.bucket, upload.id)
        log.info("%s: deleted the uploaded object %s/%s", spec.source_region, upload.bucket, upload.id)

    def delete_image(self, region: str, image_id: str) -> None:
        ec2 = self._ec2(region)
        with boto.errors(CLOUD, region, "deregister_image", image_id):
            try:
                images = retry.call(ec2.describe_images, ImageIds=[image_id], IncludeDisabled=True)["Images"]
            except ClientError as exc:
                if boto.error_code(exc) == "InvalidAMIID.NotFound":
                    return
                raise
            if not images:
                return
            # EC2 deletes the image's snapshots with it (one another AMI also uses stays).
            retry.call(ec2.deregister_image, ImageId=image_id, DeleteAssociatedSnapshots=True)

    @staticmethod
    def _delete_snapshot(ec2: Any, snapshot_id: str) -> None:
        """Inside `boto.errors`: delete a snapshot; one already gone is fine."""
        try:
            retry.call(ec2.delete_snapshot, SnapshotId=snapshot_id)
        except ClientError as exc:
            if boto.error_code(exc) != "InvalidSnapshot.NotFound":
                raise

    # -- leftovers (prune) ------------------------------------------------------------------------------

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        ec2 = self._ec2(region)
        # Any AMI of the account counts, eulerpub's or not, disabled ones too (DescribeImages leaves them out
        # unless asked): a snapshot an image is made from is no orphan.
        images = self._call(region, "describe_images", ec2.describe_images, Owners=["self"],
                            IncludeDisabled=True)["Images"]
        used = {snapshot for image in images for snapshot in _image_ref(region, image).snapshot_ids}
        found: list[Leftover] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(region, "describe_snapshots", ec2.describe_snapshots, OwnerIds=["self"],
                              Filters=[{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY]}], **token)
            for snapshot in page["Snapshots"]:
                # A pending snapshot is an upload or copy in flight (EBS cancels an abandoned one by itself).
                if snapshot["SnapshotId"] in used or snapshot.get("State") == "pending":
                    continue
                found.append(Leftover("snapshot", snapshot["SnapshotId"], snapshot["StartTime"].isoformat(),
                                      {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}))
            if not page.get("NextToken"):
                break
            token = {"NextToken": page["NextToken"]}
        if bucket:
            client, settings = self._store(region)
            found.extend(objectstore.list_leftovers(client, settings, bucket))
        return found

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        if leftover.kind == "object":
            client, settings = self._store(region)
            objectstore.delete_object(client, settings, leftover.bucket or "", leftover.id)
            return
        with boto.errors(CLOUD, region, "delete_snapshot", leftover.id):
            self._delete_snapshot(self._ec2(region), leftover.id)
