"""Pure mappings of the Alibaba adapter: names ECS's API uses, its error codes' verdicts."""

from __future__ import annotations

import pytest
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
