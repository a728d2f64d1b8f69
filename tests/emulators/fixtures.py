"""pytest fixtures and real-SDK client factories for the emulators.

Wire into a conftest with `from tests.emulators.fixtures import ims_emulator, cvm_emulator  # noqa: F401`
(or `ecs_emulator`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import models as openapi
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkims.v2 import ImsClient
from huaweicloudsdkims.v2.region.ims_region import ImsRegion
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from .cvm import CvmEmulator
from .ecs import EcsEmulator
from .ims import ImsEmulator


@pytest.fixture
def ims_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImsEmulator]:
    """A started IMS emulator; `ImsRegion.value_of(region)` resolves to it for each of its regions."""
    with ImsEmulator() as emulator:
        for name, value in emulator.sdk_env().items():
            monkeypatch.setenv(name, value)
        yield emulator
        assert not emulator.crashes, emulator.crashes[0]


@pytest.fixture
def cvm_emulator() -> Iterator[CvmEmulator]:
    with CvmEmulator() as emulator:
        yield emulator
        assert not emulator.crashes, emulator.crashes[0]


@pytest.fixture
def ecs_emulator() -> Iterator[EcsEmulator]:
    with EcsEmulator() as emulator:
        yield emulator
        assert not emulator.crashes, emulator.crashes[0]


def ims_client(emulator: ImsEmulator, region: str, sk: str | None = None) -> ImsClient:
    """An unmodified SDK client for `region`, resolved through the SDK's own region lookup (needs sdk_env())."""
    credentials = BasicCredentials(emulator.ak, sk or emulator.sk, emulator.projects[region])
    return ImsClient.new_builder().with_credentials(credentials).with_region(ImsRegion.value_of(region)).build()


def cvm_client(emulator: CvmEmulator, region: str, secret_key: str | None = None) -> CvmClient:
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=emulator.endpoint, protocol="http"))
    return CvmClient(Credential(emulator.secret_id, secret_key or emulator.secret_key), region, profile)


def ecs_client(emulator: EcsEmulator, region: str, secret: str | None = None) -> EcsClient:
    """An unmodified ECS SDK client for `region`, pointed at the emulator (plain keys, no credential chain)."""
    config = openapi.Config(access_key_id=emulator.access_key_id,
                            access_key_secret=secret or emulator.access_key_secret, region_id=region,
                            protocol="http", endpoint=emulator.url.removeprefix("http://"))
    return EcsClient(config)
