"""The STS rules of the emulated OSS (moto fixture) and ECS, against the unmodified boto3 and alibabacloud SDKs: a
request signed with an STS key passes only with its secret, its token, in the right header, before it expires."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from alibabacloud_ecs20140526 import models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import models as openapi
from alibabacloud_tea_openapi.exceptions import ClientException
from botocore.config import Config
from botocore.exceptions import ClientError

from eulerpub.clouds import boto as eulerpub_boto
from eulerpub.errors import CredentialsError
from tests.emulators import EcsEmulator
from tests.emulators.sts import StsCredential, StsIssuer
from tests.integration.sdkclouds import s3

pytestmark = pytest.mark.integration
BUCKET = "sts-rules"
REGION = "cn-hangzhou"


@pytest.fixture
def sts(moto) -> Iterator[StsIssuer]:
    issuer = StsIssuer()
    moto.sts = issuer
    s3(moto, "us-east-1").create_bucket(Bucket=BUCKET)
    yield issuer


def _oss(moto, key: str, secret: str, token: str | None, extra_header: tuple[str, str] | None = None):
    client = boto3.client("s3", endpoint_url=moto.url, region_name=REGION, aws_access_key_id=key,
                          aws_secret_access_key=secret, aws_session_token=token,
                          config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"))
    if extra_header is not None:
        name, value = extra_header
        client.meta.events.register("before-sign.s3", lambda request, **_: request.headers.add_header(name, value))
    return client


def _put(client) -> str | None:
    """The error code of a PutObject, None when it is stored."""
    try:
        client.put_object(Bucket=BUCKET, Key="eulerpub/probe", Body=b"x" * 1024)
    except ClientError as exc:
        return eulerpub_boto.error_code(exc)
    return None


def test_oss_takes_an_sts_key_with_its_secret_and_its_token_in_x_amz_security_token(moto, sts):
    good = sts.issue()

    assert _put(_oss(moto, good.access_key_id, good.access_key_secret, good.security_token)) is None
    assert moto.calls("PutObject")[-1].access_key == good.access_key_id


@pytest.mark.parametrize(("case", "code"), [("wrong secret", "SignatureDoesNotMatch"),
                                            ("no token", "AccessDenied"),
                                            ("another key's token", "InvalidSecurityToken"),
                                            ("expired", "SecurityTokenExpired"),
                                            ("token in x-oss-security-token", "InvalidArgument"),
                                            ("a key STS never issued", "InvalidAccessKeyId")])
def test_oss_refuses_an_sts_request_that_real_oss_refuses(moto, sts, case, code):
    good, other = sts.issue(), sts.issue()
    expired = sts.issue(lifetime=-1)
    key, secret, token, header = good.access_key_id, good.access_key_secret, good.security_token, None
    if case == "wrong secret":
        secret = other.access_key_secret
    elif case == "no token":
        token = None
    elif case == "another key's token":
        token = other.security_token
    elif case == "expired":
        key, secret, token = expired.access_key_id, expired.access_key_secret, expired.security_token
    elif case == "token in x-oss-security-token":
        token, header = None, ("x-oss-security-token", good.security_token)
    else:
        key = "STS.notissued0000000000"

    assert _put(_oss(moto, key, secret, token, header)) == code
    assert moto.calls("PutObject")[-1].error == code


def test_eulerpub_reads_an_expired_oss_token_as_a_credentials_error(moto, sts):
    expired = sts.issue(lifetime=-1)
    client = _oss(moto, expired.access_key_id, expired.access_key_secret, expired.security_token)

    with pytest.raises(ClientError) as excinfo:
        client.put_object(Bucket=BUCKET, Key="eulerpub/probe", Body=b"x")

    translated = eulerpub_boto.translate(excinfo.value, "alibaba", REGION, "upload_part")
    assert isinstance(translated, CredentialsError) and "SecurityTokenExpired" in translated.message


def _ecs(emulator: EcsEmulator, credential: StsCredential, token: str | None) -> EcsClient:
    config = openapi.Config(access_key_id=credential.access_key_id, access_key_secret=credential.access_key_secret,
                            security_token=token, region_id=REGION, protocol="http",
                            endpoint=emulator.url.removeprefix("http://"))
    return EcsClient(config)


def test_ecs_takes_an_sts_key_only_with_its_token_before_it_expires():
    issuer = StsIssuer()
    with EcsEmulator(regions=(REGION,), sts=issuer) as emulator:
        good, other, expired = issuer.issue(), issuer.issue(), issuer.issue(lifetime=-1)
        request = models.DescribeImagesRequest(region_id=REGION)

        assert _ecs(emulator, good, good.security_token).describe_images(request).body.total_count == 0
        codes = []
        for credential, token in ((good, None), (good, other.security_token), (expired, expired.security_token)):
            with pytest.raises(ClientException) as excinfo:
                _ecs(emulator, credential, token).describe_images(request)
            codes.append(excinfo.value.code)

    assert codes == ["MissingSecurityToken", "InvalidSecurityToken.MismatchWithAccessKey",
                     "InvalidSecurityToken.Expired"]
    assert len(emulator.requests) == 1 and len(emulator.auth_failures) == 3
