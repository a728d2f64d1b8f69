"""boto3 plumbing shared by the AWS adapter and the S3-compatible object store (S3, OBS, COS, OSS).

One place decides how clients are configured (botocore's own retries off, explicit timeouts) and how
botocore errors become eulerpub's one-sentence errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, ReadOnlyCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from eulerpub import __version__, retry
from eulerpub.errors import CloudError, CredentialsError, EulerpubError, UsageError

# eulerpub.retry is the one retry policy; botocore gets exactly one attempt so retries never multiply.
# (`total_max_attempts` counts the first try; botocore's `max_attempts` counts retries, so 1 would mean two.)
NO_SDK_RETRIES = {"total_max_attempts": 1, "mode": "standard"}
CONNECT_TIMEOUT = 10.0  # seconds; a healthy endpoint accepts a connection in well under a second
READ_TIMEOUT = 120.0  # seconds; a 512 KiB EBS block or a large S3 part on a slow link must not be cut off

# Error codes that mean "these credentials are wrong", whatever the service.
CREDENTIAL_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "InvalidToken",
    "MissingAuthenticationToken",
    "SecurityTokenExpired",  # OSS: an STS token past its expiry (EC 0002-00000007)
})


# Error codes AWS services (and the S3-compatible stores) use for "slow down" or "try again".
TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException", "SlowDown",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException", "InternalError",
    "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout",
    "RequestTimeoutException",
    # EBS direct: "You have reached the limit for concurrent API requests" (botocore ebs/2019-11-02 model)
    "ConcurrentLimitExceededException",
})


def _botocore_transient(exc: BaseException) -> bool | None:
    """botocore's verdict for eulerpub.retry: a connection that failed or dropped mid-request (ConnectionError,
    HTTPClientError: ConnectionClosedError, ReadTimeoutError...), a throttling code, 429 or 5xx are transient."""
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        return True
    if isinstance(exc, ClientError):
        code = error_code(exc) or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_CODES or code.startswith("RequestLimitExceeded") or status == 429 or status >= 500
    return None


retry.register_classifier(_botocore_transient)


@dataclass(frozen=True)
class StaticCredentials:
    """Keys for an S3-compatible store outside AWS's chain (OBS, COS). The secret never appears in repr."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"StaticCredentials(access_key={self.access_key[:4]}..., secret_key=***)"


# Keys read again for every request: (access key, secret, STS token or None). For a store outside AWS whose cloud
# has its own credential chain (Alibaba's), which refreshes a RAM role's or OIDC's short-lived token itself: an
# upload that outlives the token it started with goes on with the chain's next one.
CredentialSource = Callable[[], tuple[str, str, str | None]]


class _SourcedCredentials(Credentials):
    """botocore credentials that ask a `CredentialSource` each time a request is signed (botocore's signer calls
    `get_frozen_credentials` per request, retries included)."""

    method = "eulerpub-source"
    account_id = None

    def __init__(self, source: CredentialSource) -> None:  # no super().__init__: the keys are never stored
        self._source = source

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        access_key, secret_key, token = self._source()
        return ReadOnlyCredentials(access_key, secret_key, token or None, None)

    @property  # type: ignore[override]
    def access_key(self) -> str:
        return self.get_frozen_credentials().access_key

    @property  # type: ignore[override]
    def secret_key(self) -> str:
        return self.get_frozen_credentials().secret_key

    @property  # type: ignore[override]
    def token(self) -> str | None:
        return self.get_frozen_credentials().token

    def __repr__(self) -> str:
        return "_SourcedCredentials(***)"


class _SourceProvider(CredentialProvider):
    METHOD = CANONICAL_NAME = "custom-eulerpub-source"

    def __init__(self, source: CredentialSource) -> None:
        super().__init__()
        self._credentials = _SourcedCredentials(source)

    def load(self) -> Credentials:
        return self._credentials


def _session(credentials: StaticCredentials | CredentialSource | None) -> tuple[boto3.session.Session, dict[str, str]]:
    """A boto3 session for these credentials and the client keywords that carry static keys."""
    if isinstance(credentials, StaticCredentials):
        return boto3.session.Session(), {"aws_access_key_id": credentials.access_key,
                                         "aws_secret_access_key": credentials.secret_key}
    if credentials is None:
        return boto3.session.Session(), {}  # AWS's chain
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_SourceProvider(credentials)]))
    return boto3.session.Session(botocore_session=core), {}


def make_client(service: str, region: str, *, endpoint_url: str | None = None,
                credentials: StaticCredentials | CredentialSource | None = None, pool_size: int = 10,
                s3: dict[str, Any] | None = None, checksum_when_required: bool = False) -> Any:
    """A boto3 client with eulerpub's settings. Without `credentials` it uses boto3's standard chain (with a
    `CredentialSource`, that source at every request), and without `endpoint_url` boto3's own
    (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EC2`...)."""
    options: dict[str, Any] = {
        "region_name": region,
        "retries": NO_SDK_RETRIES,
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "max_pool_connections": pool_size,
        "user_agent_extra": f"eulerpub/{__version__}",
    }
    if s3:
        options["s3"] = s3
    if checksum_when_required:  # OBS and COS reject the CRC headers boto3 >= 1.36 adds by default
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    session, keys = _session(credentials)  # sessions are not thread safe; a client made from one is
    return session.client(service, endpoint_url=endpoint_url, config=Config(**options), **keys)


class ClientCache:
    """One client per (service, region), made on first use; safe to share between threads."""

    def __init__(self, **client_options: Any) -> None:
        self._options = client_options
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = make_client(service, region, **self._options)
            return self._clients[key]


def error_code(exc: BaseException) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def translate(exc: BaseException, cloud: str, region: str | None, operation: str,
              resource_id: str | None = None) -> EulerpubError:
    """A botocore failure as one sentence: credentials, or the call that failed and the service's reason."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsError(f"no {cloud} credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY (or use an instance role)" if cloud == "aws" else
                                f"no {cloud} credentials found")
    if isinstance(exc, NoRegionError):
        return UsageError("no region given; pass --region")
    code = error_code(exc)
    if code in CREDENTIAL_CODES:
        return CredentialsError(f"{cloud} rejected the credentials ({code}) while calling {operation}; check "
                                "the access key and secret")
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or code or "unknown error"
        return CloudError(cloud, region, operation, f"{code}: {message}" if code else message, resource_id)
    if isinstance(exc, BotoCoreError):
        return CloudError(cloud, region, operation, str(exc), resource_id)
    return CloudError(cloud, region, operation, f"{type(exc).__name__}: {exc}", resource_id)


@contextmanager
def errors(cloud: str, region: str | None, operation: str, resource_id: str | None = None) -> Iterator[None]:
    """Turn botocore exceptions raised inside into eulerpub errors (eulerpub's own pass through)."""
    try:
        yield
    except EulerpubError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, cloud, region, operation, resource_id) from exc


def call(cloud: str, region: str | None, operation: str, fn: Any, resource_id: str | None = None,
         **kwargs: Any) -> Any:
    """`fn(**kwargs)` under the retry policy, failures translated: the usual way to make one API call."""
    with errors(cloud, region, operation, resource_id):
        return retry.call(fn, **kwargs)
