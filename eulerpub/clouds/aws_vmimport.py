"""The `vmimport` service role that VM Import (import_snapshot) assumes to read the uploaded image.

`check_role` (preflight, read-only, so `--dry-run` runs it too) says whether it exists and whether these
credentials may read IAM; `ensure_role` (the upload step, before any byte is sent) creates it with read access to
the bucket when missing and the credentials may create roles, otherwise one sentence saying what an administrator
must do. ARNs carry the region's partition (`arn:aws-cn:` in China, `arn:aws-us-gov:` in GovCloud).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from eulerpub import retry
from eulerpub.clouds import boto
from eulerpub.errors import CloudError

log = logging.getLogger(__name__)

ROLE_NAME = "vmimport"  # the name VM Import looks for unless told otherwise; AWS's docs use it too
DOCS = "https://docs.aws.amazon.com/vm-import/latest/userguide/required-permissions.html"

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "vmie.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:Externalid": ROLE_NAME}},
    }],
}


def role_policy(bucket: str, partition: str) -> dict[str, Any]:
    """What VM Import needs: read the bucket (an ARN of `partition`: aws, aws-cn, aws-us-gov), make snapshots."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
             "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"]},
            {"Effect": "Allow", "Action": ["ec2:ModifySnapshotAttribute", "ec2:CopySnapshot", "ec2:RegisterImage",
                                           "ec2:Describe*"], "Resource": "*"},
        ],
    }


def _denied(exc: ClientError) -> bool:
    return boto.error_code(exc) in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


def check_role(iam: Any) -> bool:
    """Read-only: True if the vmimport role exists; one sentence when these credentials may not read IAM roles."""
    with boto.errors("aws", None, "iam:GetRole", ROLE_NAME):
        try:
            retry.call(iam.get_role, RoleName=ROLE_NAME)
        except ClientError as exc:
            if _denied(exc):
                raise CloudError("aws", None, "iam:GetRole", f"these credentials may not read IAM roles, so the "
                                 f"'{ROLE_NAME}' role VM Import needs cannot be checked; use --upload ebs, or "
                                 f"grant iam:GetRole ({DOCS})", ROLE_NAME) from None
            if boto.error_code(exc) != "NoSuchEntity":
                raise
            return False
    return True


def ensure_role(iam: Any, bucket: str, partition: str) -> bool:
    """Make sure the vmimport role exists and may read `bucket`; True if this call created it."""
    created = not check_role(iam)
    if created:
        log.info("creating the '%s' service role VM Import needs", ROLE_NAME)
        try:
            retry.call(iam.create_role, RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                       Description="VM Import service role (created by eulerpub)",
                       Tags=[{"Key": "managed-by", "Value": "eulerpub"}])
        except ClientError as exc:
            if _denied(exc):
                raise CloudError("aws", None, "iam:CreateRole", f"the '{ROLE_NAME}' role VM Import needs is missing "
                                 f"and these credentials may not create it; ask an administrator to create it "
                                 f"({DOCS}) or use --upload ebs", ROLE_NAME) from None
            if boto.error_code(exc) != "EntityAlreadyExists":  # a concurrent run made it: fine
                raise boto.translate(exc, "aws", None, "iam:CreateRole", ROLE_NAME) from exc
    try:
        retry.call(iam.put_role_policy, RoleName=ROLE_NAME, PolicyName=f"eulerpub-{bucket}"[:128],
                   PolicyDocument=json.dumps(role_policy(bucket, partition)))
    except ClientError as exc:
        if not _denied(exc) or created:
            raise boto.translate(exc, "aws", None, "iam:PutRolePolicy", ROLE_NAME) from exc
        log.warning("cannot add read access to bucket %s to the '%s' role (no iam:PutRolePolicy); the import "
                    "fails if the role cannot read it", bucket, ROLE_NAME)
    return created
