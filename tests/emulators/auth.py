"""Server-side verification of the two request signatures, rebuilt from the wire as the clouds do.

Huawei `SDK-HMAC-SHA256` (huaweicloudsdkcore.signer.Signer):
  canonical = METHOD \n URI(each segment quoted, trailing "/") \n sorted query \n "name:value\n" per signed
              header \n signed;headers \n sha256hex(body) (or X-Sdk-Content-Sha256, or the empty hash)
  signature = hex(HMAC-SHA256(SK, "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + sha256hex(canonical)))

Tencent `TC3-HMAC-SHA256` (tencentcloud.common.abstract_client):
  canonical = METHOD \n / \n query(GET only) \n "content-type:..\nhost:..\n" \n content-type;host \n sha256hex(body)
  key chain "TC3"+SecretKey -> date -> service -> "tc3_request";
  signature = hex(HMAC(key, "TC3-HMAC-SHA256\n" + X-TC-Timestamp + "\n" + date/service/tc3_request
                            + "\n" + sha256hex(canonical)))
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

from .server import HttpRequest

SecretLookup = Callable[[str], "str | None"]


class AuthError(Exception):
    """`code` is a short machine tag (the cloud modules map it to their error shapes)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header_value(request: HttpRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise AuthError("signature", f"signed header {name!r} is missing from the request")
    # http.server decodes header bytes as latin-1; the SDK sent UTF-8.
    return value.encode("iso-8859-1").decode("utf-8").strip()


_SDK_AUTH = re.compile(r"^SDK-HMAC-SHA256\s+Access=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)$")
_SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_EMPTY_SHA256 = _sha256_hex(b"")


def _sdk_canonical_query(raw_query: str) -> str:
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)


def _sdk_canonical_uri(path: str) -> str:
    uri = "/".join(quote(segment, safe="~") for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def verify_sdk_hmac(request: HttpRequest, secret_for: SecretLookup, max_skew: float) -> str:
    """Verify a Huawei SDK-HMAC-SHA256 request; return the access key, or raise AuthError."""
    match = _SDK_AUTH.match(request.header("Authorization") or "")
    if not match:
        raise AuthError("missing", "Authorization header is missing or not SDK-HMAC-SHA256")
    access, signed_headers, signature = match.groups()
    secret = secret_for(access)
    if secret is None:
        raise AuthError("unknown_key", f"access key {access} does not exist")
    sdk_date = request.header("X-Sdk-Date") or ""
    try:
        signed_at = datetime.strptime(sdk_date, _SDK_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise AuthError("signature", f"X-Sdk-Date {sdk_date!r} is not in {_SDK_DATE_FORMAT} format") from None
    if abs(time.time() - signed_at) > max_skew:
        raise AuthError("expired", f"X-Sdk-Date {sdk_date} is more than {max_skew:.0f}s from server time")

    names = signed_headers.split(";")
    headers = "".join(f"{name}:{_header_value(request, name)}\n" for name in names)
    payload_hash = (request.header("X-Sdk-Content-Sha256") or _sha256_hex(request.body)) if request.body \
        else _EMPTY_SHA256
    canonical = "\n".join([request.method.upper(), _sdk_canonical_uri(request.path),
                           _sdk_canonical_query(request.raw_query), headers, signed_headers, payload_hash])
    string_to_sign = f"SDK-HMAC-SHA256\n{sdk_date}\n{_sha256_hex(canonical.encode())}"
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuthError("signature", "verify aksk signature fail")
    return access


_TC3_AUTH = re.compile(r"^TC3-HMAC-SHA256\s+Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([^/]+)/tc3_request,\s*"
                       r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)$")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def verify_tc3(request: HttpRequest, secret_for: SecretLookup, service: str, max_skew: float) -> str:
    """Verify a Tencent TC3-HMAC-SHA256 request; return the SecretId, or raise AuthError."""
    match = _TC3_AUTH.match(request.header("Authorization") or "")
    if not match:
        raise AuthError("missing", "Authorization header is missing or not TC3-HMAC-SHA256")
    secret_id, date, signed_service, signed_headers, signature = match.groups()
    secret = secret_for(secret_id)
    if secret is None:
        raise AuthError("unknown_key", f"SecretId {secret_id} is not found")
    timestamp = request.header("X-TC-Timestamp") or ""
    if not timestamp.isdigit():
        raise AuthError("signature", "X-TC-Timestamp is missing or not an integer")
    if abs(time.time() - int(timestamp)) > max_skew:
        raise AuthError("expired", f"X-TC-Timestamp {timestamp} is more than {max_skew:.0f}s from server time")
    if date != datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d"):
        raise AuthError("signature", "credential date does not match X-TC-Timestamp")
    if signed_service != service:
        raise AuthError("signature", f"credential scope service {signed_service!r} is not {service!r}")
    names = signed_headers.split(";")
    if "content-type" not in names or "host" not in names:
        raise AuthError("signature", "SignedHeaders must include content-type and host")

    headers = "".join(f"{name}:{_header_value(request, name).lower()}\n" for name in names)
    payload = b"UNSIGNED-PAYLOAD" if request.header("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" else request.body
    query = request.raw_query if request.method == "GET" else ""
    canonical = "\n".join([request.method, request.path, query, headers, signed_headers, _sha256_hex(payload)])
    string_to_sign = (f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n"
                      f"{_sha256_hex(canonical.encode())}")
    key = _hmac(_hmac(_hmac(("TC3" + secret).encode(), date), service), "tc3_request")
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuthError("signature", "the provided signature does not match the calculated one")
    return secret_id
