"""Alibaba Cloud STS credentials for the emulators: issued, served to the SDK's chain, checked, expired.

One `StsIssuer` is shared by the ECS emulator and the moto fixture's OSS rules, as one STS serves both clouds'
services. Its rules and their sources:

- An STS AccessKeyId starts with `STS.` (STS AssumeRole API reference, the response example; OSS's error pages
  0002-00000003 and 0002-00000008 show `OSSAccessKeyId=STS.…`). A key with that prefix that STS did not issue is
  unknown.
- A request signed with an STS key must carry that key's security token (OSS error 0002-00000003: the token is
  missing), the very one STS issued with it (OSS error 0002-00000008: the token is invalid), and is refused once
  the credentials are past their `Expiration` (OSS error 0002-00000007; the real response is 403
  `SecurityTokenExpired`). No grace period: real credentials are not good after their stated expiry either.
- `serve()` answers as an ALIBABA_CLOUD_CREDENTIALS_URI endpoint: GET gives `{"Code": "Success", "AccessKeyId",
  "AccessKeySecret", "SecurityToken", "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}`, the fields and format
  alibabacloud-credentials 1.0.12's `URLCredentialsProvider` requires and parses. Every GET issues new
  credentials, as assuming the role again does.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from .server import HttpRequest, HttpResponse, ServerThread

STS_PREFIX = "STS."
Failure = Literal["unknown", "missing", "mismatch", "expired"]


@dataclass(frozen=True)
class StsCredential:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: float  # Unix time, whole seconds (Expiration has no fraction)

    @property
    def expiration(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StsIssuer:
    """Issues STS credentials valid for `lifetime` seconds and answers whether a request's key and token pass."""

    lifetime: float = 3600.0
    issued: dict[str, StsCredential] = field(default_factory=dict)
    served: int = 0  # credentials handed out by the URI endpoint
    crashes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None

    def issue(self, lifetime: float | None = None) -> StsCredential:
        expires = int(time.time() + (self.lifetime if lifetime is None else lifetime))
        credential = StsCredential(STS_PREFIX + secrets.token_hex(10), secrets.token_urlsafe(24),
                                   "CAIS" + secrets.token_urlsafe(96), float(expires))
        with self._lock:
            self.issued[credential.access_key_id] = credential
        return credential

    def secret_for(self, access_key_id: str) -> str | None:
        with self._lock:
            found = self.issued.get(access_key_id)
        return found.access_key_secret if found else None

    def check(self, access_key_id: str, token: str | None, now: float | None = None) -> Failure | None:
        """None when a request signed with `access_key_id` and carrying `token` passes; else what is wrong."""
        with self._lock:
            found = self.issued.get(access_key_id)
        if found is None:
            return "unknown"
        if not token:
            return "missing"
        if not secrets.compare_digest(token, found.security_token):
            return "mismatch"
        if (time.time() if now is None else now) >= found.expires_at:
            return "expired"
        return None

    def tokens(self) -> list[str]:
        """Every security token and secret issued: what must appear in no output or file."""
        with self._lock:
            return [v for c in self.issued.values() for v in (c.security_token, c.access_key_secret)]

    # -- the ALIBABA_CLOUD_CREDENTIALS_URI endpoint -----------------------------------------------------------

    def _answer(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return HttpResponse.json(405, {"Code": "MethodNotAllowed"})
        credential = self.issue()
        with self._lock:
            self.served += 1
        return HttpResponse.json(200, {"Code": "Success", "AccessKeyId": credential.access_key_id,
                                       "AccessKeySecret": credential.access_key_secret,
                                       "SecurityToken": credential.security_token,
                                       "Expiration": credential.expiration})

    def serve(self) -> str:
        """Start the credentials endpoint; its URL, for ALIBABA_CLOUD_CREDENTIALS_URI."""
        if self._server is None:
            self._server = ServerThread(self._answer, self.crashes)
            self._server.start()
        return self._server.url + "/credentials"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
