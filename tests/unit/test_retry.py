"""retry: which failures are worth another attempt. A failed DNS lookup is not (issue 9: offline was a storm of
seven retry warnings and a 400-character urllib3 message)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, NoCredentialsError
from urllib3.exceptions import MaxRetryError, NameResolutionError

from eulerpub import retry


def _resolution_failure() -> requests.ConnectionError:
    """What requests raises for an unresolvable host, built the way urllib3 nests it."""
    reason = NameResolutionError("does-not-exist.invalid", None, socket.gaierror(-2, "Name or service not known"))
    return requests.ConnectionError(MaxRetryError(None, "/x", reason))  # type: ignore[arg-type]


def test_a_failed_name_lookup_is_not_transient_and_names_the_host():
    exc = _resolution_failure()
    assert retry.unresolvable_host(exc) == "does-not-exist.invalid"
    assert not retry.is_transient(exc)


def test_a_lookup_failure_wrapped_by_botocore_is_found_through_the_cause_chain():
    try:
        try:
            raise _resolution_failure()
        except requests.ConnectionError as inner:
            raise EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/") from inner
    except EndpointConnectionError as exc:
        assert retry.unresolvable_host(exc) == "does-not-exist.invalid"
        assert not retry.is_transient(exc)


@pytest.mark.parametrize("exc", [requests.ConnectionError("connection refused"), ConnectionResetError(),
                                 TimeoutError()])
def test_other_connection_failures_stay_transient(exc):
    assert retry.unresolvable_host(exc) is None
    assert retry.is_transient(exc)


def test_a_real_unresolvable_host_fails_at_once():
    attempts = []

    def get():
        attempts.append(1)
        return requests.get("http://does-not-exist.invalid/", timeout=5)

    with pytest.raises(requests.ConnectionError):
        retry.call(get)
    assert attempts == [1]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "DescribeImages")


@pytest.mark.parametrize(("exc", "transient"), [
    (_client_error("Throttling", 400), True),
    (_client_error("RequestLimitExceeded", 503), True),
    (_client_error("ConcurrentLimitExceededException", 400), True),
    (_client_error("SomethingNew", 500), True),
    (_client_error("InvalidAMIID.NotFound", 400), False),
    (_client_error("UnauthorizedOperation", 403), False),
    (EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"), True),
    (ConnectionClosedError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"), True),
    (NoCredentialsError(), False),
])
def test_botocore_errors_are_classified_by_the_aws_plumbing(exc, transient):
    import eulerpub.clouds.boto  # noqa: F401  (registers botocore's classifier)

    assert retry.is_transient(exc) is transient


def test_the_retry_policy_knows_no_cloud():
    """Cloud error codes and SDK types live with each adapter's classifier (issue 15 item 6): retry.py names none."""
    source = Path(retry.__file__).read_text().lower()
    for word in ("botocore", "boto3", "tencent", "huawei", "apigw", "requestlimitexceeded"):
        assert word not in source, word
