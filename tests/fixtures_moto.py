"""moto's server as AWS (and as the S3-compatible store behind OBS/COS tests), extended where moto falls short.

Fixtures (load with `pytest_plugins = ["tests.fixtures_moto"]`):

- `moto_server` (session): one `ThreadedMotoServer` on 127.0.0.1, an ephemeral port, wrapped in a recorder and
  fault injector. Yields a `MotoHarness`: `.url`, `.requests` (every request: service, region, action, params,
  body size, status), `.calls(...)`, `.add_fault(...)`, `.registered` / `.copied` (what RegisterImage/CopyImage
  received), `.import_tasks`, the switches below, `.reset()`.
- `moto` (function): the same harness, reset before the test (state, recordings, faults).
- `aws_env` (function): `moto` plus the environment a boto3 client needs to reach it: `AWS_ENDPOINT_URL`, fake
  credentials (`FAKE_ACCESS_KEY`/`FAKE_SECRET_KEY`, distinctive so leak scans can look for them), a region.

Outside pytest (tests/demo.py): `with running_moto_server() as harness:` is the `moto_server` fixture, and
`aws_environment(harness)` is what `aws_env` sets.

What the extension adds to moto 5.2 (see ../shared/reference/clouds.md for its gaps):
- ImportSnapshot / DescribeImportSnapshotTasks: a task state machine (pending -> validating -> converting ->
  completed, one step per describe), checking the `vmimport` role exists; the finished task's snapshot holds the
  object's non-zero 512 KiB blocks (VMDK/VHD converted with qemu-img), so tests can read it back with EBS APIs.
  `fail_next_imports` makes tasks end in `error`.
- RegisterImage keeps what it is given (architecture, boot mode, ENA, IMDS, SR-IOV, block devices, tags), refuses
  a missing snapshot and a duplicate name, and the image is `pending` for a couple of describes.
- CopyImage honours ClientToken, CopyImageTags and TagSpecifications, copies the AMI's fields, and is `pending`
  for a couple of describes.
- EBS direct: StartSnapshot honours ClientToken and keeps the EC2 snapshot `pending` until CompleteSnapshot;
  PutSnapshotBlock verifies each block's SHA-256 and length; CompleteSnapshot verifies ChangedBlocksCount and the
  LINEAR aggregate checksum. (Real EBS does all of this; moto does none.)
- GetImageBlockPublicAccessState, answered from `block_public_access[region]` (default "unblocked").

Stricter than moto, each rule with its source in a comment where it is enforced; tests/emulators/README.md
("AWS (moto fixture)") lists them all, with what is not modelled:
- `new_snapshot_not_found = N`: the first N PutSnapshotBlock calls for each new snapshot answer 404
  ResourceNotFoundException (EBS direct eventual consistency). `add_fault(..., code=, status=)` answers any code.
- GetSnapshotBlockPublicAccessState from `snapshot_block_public_access[region]` (default "unblocked"); a public
  ModifySnapshotAttribute is refused unless unblocked. EBS encryption by default (moto's own
  Enable/GetEbsEncryptionByDefault) makes new, copied and imported snapshots encrypted, and an encrypted
  snapshot cannot be shared.
- DescribeImages leaves disabled AMIs out unless IncludeDisabled; DeregisterImage honours
  DeleteAssociatedSnapshots.
- S3: a wrong Content-MD5 is BadDigest; more than 10 object tags is refused when the upload starts; OBS/COS
  (a non-AWS signing region, or a bucket in `md5_buckets`) require Content-MD5 on UploadPart; OSS (a bucket in
  `oss_buckets`) refuses user-metadata names other than letters, digits and '-', and 8 KB or more of it.
- OSS and STS (`sts`, a tests.emulators.sts.StsIssuer): a request signed with an `STS.` key must pass the SigV4
  signature check with that key's secret, carry its token in a signed `x-amz-security-token` before the token
  expires, and not in `x-oss-security-token` (see `_sts_refusal`).
- IAM and S3 state is per partition, so a cn-north-1 run needs its role and bucket in aws-cn.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import io
import json
import logging
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote

import pytest
import requests

FAKE_ACCESS_KEY = "AKIAEULERPUBFAKE7KEY"
FAKE_SECRET_KEY = "eulerpub-fake-secret/DoNotLeak+9f3c1a7e5b"
ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
BLOCK = 512 * 1024
PENDING_DESCRIBES = 2  # an image stays `pending` for this many DescribeImages calls, like a real one for minutes

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/aws4_request")


@dataclass
class Recorded:
    service: str
    region: str
    action: str
    method: str
    path: str
    params: dict[str, Any]
    body_size: int
    status: int = 0
    error: str | None = None  # the code a fixture rule refused it with
    access_key: str = ""  # the key it was signed with
    at: float = field(default_factory=time.time)  # when it arrived


@dataclass
class Fault:
    """Make matching requests fail. `kind`: throttle | error500 | drop | delay | fail (a permanent 400)."""

    kind: str
    service: str | None = None
    action: str | None = None
    region: str | None = None
    times: int | None = None  # None: every matching request, forever
    every: int = 1  # 3: only every third matching request (a share of calls)
    delay: float = 0.0
    serial: bool = False  # with kind=delay: one matching request at a time, so parallel clients are slowed too
    message: str = "injected failure"
    code: str | None = None  # instead of the kind's usual error code (e.g. ConcurrentLimitExceededException)
    status: int | None = None  # instead of the kind's usual HTTP status
    seen: int = 0
    fired: int = 0

    def matches(self, rec: Recorded) -> bool:
        return ((self.service is None or self.service == rec.service)
                and (self.action is None or self.action == rec.action)
                and (self.region is None or self.region == rec.region))


@dataclass
class ImportTask:
    task_id: str
    region: str
    bucket: str
    key: str
    format: str
    token: str | None
    tags: list[dict[str, str]]
    description: str
    fail: bool
    step: int = 0
    snapshot_id: str | None = None


@dataclass
class MotoHarness:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    registered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    copied: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    import_tasks: dict[str, ImportTask] = field(default_factory=dict)
    block_public_access: dict[str, str] = field(default_factory=dict)
    snapshot_block_public_access: dict[str, str] = field(default_factory=dict)  # region -> state (unblocked)
    md5_buckets: set[str] = field(default_factory=set)  # buckets that act as OBS/COS: Content-MD5 required
    oss_buckets: set[str] = field(default_factory=set)  # buckets that act as OSS: its user-metadata rules
    sts: Any = None  # a tests.emulators.sts.StsIssuer: requests signed with its STS keys get OSS's STS rules
    fail_next_imports: int = 0
    # EBS direct eventual consistency: the first N PutSnapshotBlock calls for each new snapshot answer 404
    # ResourceNotFoundException (coldsnap and the EBS direct docs: a new snapshot is not visible at once).
    new_snapshot_not_found: int = 0
    not_found_left: dict[str, int] = field(default_factory=dict)  # snapshot id -> 404s still to answer
    tokens: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (region, op, token) -> id
    pending_images: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_fault(self, kind: str, **kwargs: Any) -> Fault:
        fault = Fault(kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def calls(self, action: str | None = None, *, service: str | None = None,
              region: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if (action is None or r.action == action)
                    and (service is None or r.service == service) and (region is None or r.region == region)]

    def bytes_sent(self, action: str) -> int:
        """Body bytes the server received for successful `action` calls."""
        return sum(r.body_size for r in self.calls(action) if 200 <= r.status < 300)

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.registered.clear()
            self.copied.clear()
            self.import_tasks.clear()
            self.block_public_access.clear()
            self.snapshot_block_public_access.clear()
            self.md5_buckets.clear()
            self.oss_buckets.clear()
            self.sts = None
            self.tokens.clear()
            self.pending_images.clear()
            self.fail_next_imports = 0
            self.new_snapshot_not_found = 0
            self.not_found_left.clear()


# -- recording and fault injection: a WSGI middleware in front of moto ------------------------------------------

def _s3_action(method: str, path: str, query: dict[str, list[str]]) -> str:
    parts = [p for p in path.split("/") if p]
    if "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                "GET": "ListParts"}.get(method, "Multipart")
    if len(parts) <= 1:
        return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "GET": "ListObjects", "DELETE": "DeleteBucket"}.get(
            method, method)
    return {"HEAD": "HeadObject", "PUT": "PutObject", "GET": "GetObject", "DELETE": "DeleteObject"}.get(method,
                                                                                                         method)


def _ebs_action(method: str, path: str) -> str:
    if path.rstrip("/") == "/snapshots" and method == "POST":
        return "StartSnapshot"
    if path.startswith("/snapshots/completion/"):
        return "CompleteSnapshot"
    if re.match(r"^/snapshots/[^/]+/blocks/\d+$", path):
        return "PutSnapshotBlock" if method == "PUT" else "GetSnapshotBlock"
    if path.endswith("/blocks"):
        return "ListSnapshotBlocks"
    return method


def _amz_headers(environ: dict[str, Any]) -> dict[str, str]:
    """x-amz-* request headers, named as on the wire (x-amz-checksum-sha256)."""
    return {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_X_AMZ_")}


def _describe(environ: dict[str, Any], body: bytes) -> Recorded:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(auth)
    access_key, region, service = match.groups() if match else ("", "", "")
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    params: dict[str, Any] = {}
    if service == "s3":
        action = _s3_action(method, path, query)
        params = {k: v[0] for k, v in query.items()}
        params.update(_amz_headers(environ))
        # werkzeug drops a header whose name holds '_' (x-amz-meta-my_key); SigV4 signs every x-amz-* header,
        # so its name is still in SignedHeaders: recorded with its value unknown, for the OSS metadata rule
        signed = re.search(r"SignedHeaders=([^,]+)", auth)
        for name in signed.group(1).split(";") if signed else ():
            if name.startswith("x-amz-meta-"):
                params.setdefault(name, "")
        if environ.get("HTTP_CONTENT_MD5"):
            params["content-md5"] = environ["HTTP_CONTENT_MD5"]
    elif service == "ebs":
        action = _ebs_action(method, path)
        params = _amz_headers(environ)
        if body and action != "PutSnapshotBlock":
            with contextlib.suppress(ValueError):
                params.update(json.loads(body))
    else:
        form = parse_qs(body.decode(errors="replace"), keep_blank_values=True) if body else query
        params = {k: v[0] for k, v in form.items()}
        action = params.get("Action", method)
    return Recorded(service, region, action, method, path, params, len(body), access_key=access_key)


def _error_response(rec: Recorded, status: int, code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    if rec.service == "ebs":
        body = json.dumps({"message": message}).encode()
        return f"{status} Error", [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body
    if rec.service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        return f"{status} Error", [("Content-Type", "application/xml")], body
    if rec.service in ("iam", "sts"):
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>r-1</RequestId></ErrorResponse>").encode()
        return f"{status} Error", [("Content-Type", "text/xml")], body
    body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>r-1</RequestID></Response>").encode()
    return f"{status} Error", [("Content-Type", "text/xml")], body


FAULT_RESPONSES = {
    "throttle": {"ec2": (400, "RequestLimitExceeded"), "s3": (503, "SlowDown"), "ebs": (429, "ThrottlingException"),
                 "iam": (400, "Throttling"), "sts": (400, "Throttling")},
    "error500": {"ec2": (500, "InternalError"), "s3": (500, "InternalError"), "ebs": (500, "InternalServerException"),
                 "iam": (500, "ServiceFailure"), "sts": (500, "InternalFailure")},
    "fail": {"ec2": (400, "InvalidParameterValue"), "s3": (403, "AccessDenied"), "ebs": (400, "ValidationException"),
             "iam": (403, "AccessDenied"), "sts": (403, "AccessDenied")},
}


@functools.cache
def _aws_regions() -> frozenset[str]:
    """Every S3 region botocore knows, in every partition."""
    import boto3

    session = boto3.session.Session()
    return frozenset(r for p in session.get_available_partitions() for r in session.get_available_regions("s3", p))


def _s3_refusal(rec: Recorded, body: bytes, harness: MotoHarness) -> tuple[str, str] | None:
    """(code, message) when real S3 (or OBS/COS for `harness.md5_buckets`) would refuse the request; moto would not.

    - UploadPart's x-amz-checksum-sha256 must match the body (S3 API reference, UploadPart: BadDigest).
    - A Content-MD5 must match the body (S3 API reference, PutObject/UploadPart; OBS and COS check it the same way).
    - On OBS/COS, UploadPart must carry Content-MD5: those stores ignore x-amz-checksum-*, so it is the upload's
      only integrity check (a fixture rule: eulerpub must send it there). PutObject is only checked when it
      carries one: eulerpub never calls it, and the tests' own setup calls do, with plain boto3. A request is
      OBS/COS when it is signed for a region AWS does not have (cn-north-4, ap-guangzhou: how the Huawei and
      Tencent tests reach this server) or its bucket is in `harness.md5_buckets`.
    - At most 10 tags per object (S3 User Guide, "Categorizing your storage using tags"), refused when the upload
      starts rather than when it completes (moto checks at completion).
    - OSS (`harness.oss_buckets`): user metadata (`x-amz-meta-*` through the S3-compatible API, `x-oss-meta-*`
      natively) names hold only letters, digits and '-' (OSS error 0011-00000004: "Underscores (_) and other
      characters are not supported"), and all names and values together stay under 8 KB (OSS error 0011-00000002).
    """
    if rec.action not in ("UploadPart", "PutObject", "CreateMultipartUpload"):
        return None
    if rec.action != "UploadPart" and rec.path.strip("/").split("/", 1)[0] in harness.oss_buckets:
        meta = {k: str(v) for k, v in rec.params.items() if k.startswith("x-amz-meta-")}
        bad = next((k for k in meta if not re.fullmatch(r"[a-z0-9-]+", k.removeprefix("x-amz-meta-"))), None)
        if bad is not None:
            return "InvalidArgument", f"0011-00000004: the user metadata name {bad} holds a character OSS refuses"
        if sum(len(k) + len(v) for k, v in meta.items()) >= 8 * 1024:
            return "InvalidArgument", "0011-00000002: the user metadata is 8 KB or more"
    if rec.action == "UploadPart":
        sha256 = rec.params.get("x-amz-checksum-sha256")
        if sha256 and base64.b64encode(hashlib.sha256(body).digest()).decode() != sha256:
            return "BadDigest", "The SHA256 you specified did not match the calculated checksum."
    if rec.action in ("UploadPart", "PutObject"):
        md5 = rec.params.get("content-md5")
        if md5 and base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode() != md5:
            return "BadDigest", "The Content-MD5 you specified did not match what we received."
        bucket = rec.path.strip("/").split("/", 1)[0]
        obs_cos = bucket in harness.md5_buckets or rec.region not in _aws_regions()
        if not md5 and obs_cos and rec.action == "UploadPart":
            return "InvalidRequest", f"{rec.action} to bucket {bucket} (OBS/COS flavour) needs Content-MD5"
    tagging = rec.params.get("x-amz-tagging")
    if tagging and rec.action != "UploadPart" and len(parse_qs(tagging, keep_blank_values=True)) > 10:
        return "BadRequest", "Object tags cannot be greater than 10"
    return None


def _sigv4_signature(environ: dict[str, Any], secret: str, signed: list[str], amz_date: str, scope: str) -> str:
    """The SigV4 signature of the request as received (AWS General Reference, "Create a signed AWS API request":
    canonical request, string to sign, signing key from date/region/service). S3 signs its path as sent (no
    second encoding) and the payload hash as given in x-amz-content-sha256."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path = raw.split("?", 1)[0] or "/"
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in
                     sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)))

    def header(name: str) -> str:
        key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
            name, "HTTP_" + name.upper().replace("-", "_"))
        return " ".join(str(environ.get(key, "")).split())

    headers = "".join(f"{name}:{header(name)}\n" for name in signed)
    canonical = "\n".join([environ["REQUEST_METHOD"], path, query, headers, ";".join(signed),
                           header("x-amz-content-sha256")])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _sts_refusal(environ: dict[str, Any], body: bytes, harness: MotoHarness) -> tuple[int, str, str] | None:
    """(status, code, message) when OSS would refuse a request signed with an STS key of `harness.sts`.

    - In S3-compatible mode the token goes in `x-amz-security-token`; `x-oss-security-token` is refused (OSS error
      0002-00000009, which says to use x-amz-security-token instead).
    - The key must be one STS issued, the signature must be its secret's (SigV4), the token must be present
      (0002-00000003), signed (SigV4 signs every x-amz-* header), the one issued with the key (0002-00000008) and
      not expired (0002-00000007, 403 SecurityTokenExpired): see tests.emulators.sts.
    Requests signed with an AccessKey pair are left to the rules above, as before."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.match(r"AWS4-HMAC-SHA256 Credential=(STS\.[^/]+)/([^,]+), ?SignedHeaders=([^,]+), ?Signature=(\w+)",
                     auth)
    if harness.sts is None or match is None:
        return None
    key, scope, signed_list, signature = match.groups()
    signed = signed_list.split(";")
    if environ.get("HTTP_X_OSS_SECURITY_TOKEN"):
        return 400, "InvalidArgument", "0002-00000009: an S3-compatible request carries x-oss-security-token"
    secret = harness.sts.secret_for(key)
    if secret is None:
        return 403, "InvalidAccessKeyId", f"The OSS Access Key Id {key} does not exist"
    payload = str(environ.get("HTTP_X_AMZ_CONTENT_SHA256", ""))
    if payload not in ("UNSIGNED-PAYLOAD", hashlib.sha256(body).hexdigest()):
        return 400, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 does not match the body"
    expected = _sigv4_signature(environ, secret, signed, str(environ.get("HTTP_X_AMZ_DATE", "")), scope)
    if not hmac.compare_digest(expected, signature):
        return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match (STS key)"
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if token and "x-amz-security-token" not in signed:
        return 403, "AccessDenied", "x-amz-security-token is not signed"
    failure = harness.sts.check(key, token)
    refusals = {"missing": (403, "AccessDenied", "0002-00000003: the request uses an STS AccessKey ID but carries "
                                                 "no security token"),
                "mismatch": (403, "InvalidSecurityToken", "0002-00000008: the security token is invalid"),
                "expired": (403, "SecurityTokenExpired", "0002-00000007: The security token you provided has "
                                                         "expired.")}
    return refusals.get(failure) if failure else None


class Recorder:
    def __init__(self, app: Any, harness: MotoHarness) -> None:
        self.app = app
        self.harness = harness
        self._serial = threading.Lock()

    def _fault_for(self, rec: Recorded) -> Fault | None:
        with self.harness.lock:
            for fault in self.harness.faults:
                if not fault.matches(rec) or (fault.times is not None and fault.fired >= fault.times):
                    continue
                fault.seen += 1
                if fault.seen % fault.every == 0:
                    fault.fired += 1
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        body = stream.read(int(length)) if length else (stream.read() if environ.get("wsgi.input_terminated")
                                                        else b"")
        rec = _describe(environ, body)
        with self.harness.lock:
            self.harness.requests.append(rec)
        # OSS checks a request's credentials when it arrives, before a slow link (a delay fault) delivers its body
        refused = _sts_refusal(environ, body, self.harness) if rec.service == "s3" else None
        fault = self._fault_for(rec) if rec.service else None
        if fault is not None and fault.kind == "delay":
            if fault.serial:
                with self._serial:
                    time.sleep(fault.delay)
            else:
                time.sleep(fault.delay)
        elif fault is not None and fault.kind == "drop":
            rec.status = -1
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            start_response("500 Dropped", [("Content-Length", "0")])
            return [b""]
        elif fault is not None:
            status, code = FAULT_RESPONSES[fault.kind].get(rec.service, (500, "InternalError"))
            status, code = fault.status or status, fault.code or code
            rec.status = status
            status_line, headers, payload = _error_response(rec, status, code, fault.message)
            start_response(status_line, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]
        refusal = _s3_refusal(rec, body, self.harness) if rec.service == "s3" and refused is None else None
        if refused is None and refusal is not None:
            refused = (400, *refusal)
        if refused is not None:
            rec.status = refused[0]
            rec.error = refused[1]
            status_line, headers, payload = _error_response(rec, *refused)
            start_response(status_line, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            rec.status = int(status.split()[0])
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start_response)


# -- moto extensions --------------------------------------------------------------------------------------------

def _tags_of(specs: list[dict[str, Any]] | None, resource_type: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in specs or []:
        if spec.get("ResourceType") == resource_type:
            tags.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    return tags


def _raw_bytes(data: bytes, fmt: str) -> bytes:
    if fmt == "RAW":
        return data
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out.raw"
        src.write_bytes(data)
        subprocess.run(["qemu-img", "convert", "-f", {"VMDK": "vmdk", "VHD": "vpc"}[fmt], "-O", "raw", str(src),
                        str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


def _snapshot_from_bytes(region: str, raw: bytes, description: str) -> str:
    """An EC2 snapshot (completed) whose EBS blocks are `raw`'s non-zero 512 KiB blocks."""
    from moto.ebs.models import Block, EBSSnapshot, ebs_backends
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[ACCOUNT][region]
    gib = max(1, -(-len(raw) // 1024**3))
    volume = ec2.create_volume(size=gib, zone_name=f"{region}a")
    snapshot = ec2.create_snapshot(volume.id, description)
    _encrypt_by_default(ec2, snapshot)
    ebs_snapshot = EBSSnapshot(account_id=ACCOUNT, snapshot=snapshot)
    for index in range(-(-len(raw) // BLOCK)):
        chunk = raw[index * BLOCK:(index + 1) * BLOCK].ljust(BLOCK, b"\0")
        if chunk.count(0) != BLOCK:
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
            ebs_snapshot.blocks[index] = Block(chunk, digest, "SHA256", BLOCK)
    ebs_snapshot.status = "completed"
    ebs_backends[ACCOUNT][region].snapshots[snapshot.id] = ebs_snapshot
    return snapshot.id


AWS_MANAGED_EBS_KEY = "alias/aws/ebs"  # GetEbsDefaultKmsKeyId until the account picks a key (moto answers nothing)


def _default_ebs_key(ec2: Any) -> str:
    return ec2.default_kms_key_id or AWS_MANAGED_EBS_KEY


def _encrypt_by_default(ec2: Any, snapshot: Any) -> None:
    """With EBS encryption by default on, a new snapshot is encrypted with the region's default key (EBS User
    Guide, "Encryption by default"; EBS direct StartSnapshot "Encrypted"); moto leaves it plain."""
    if ec2.ebs_encryption_by_default:
        snapshot.encrypted, snapshot.kms_key_id = True, _default_ebs_key(ec2)


def _partition(region: str) -> str:
    """moto keeps IAM and S3 per partition (aws, aws-cn, aws-us-gov), as AWS does."""
    import boto3

    return boto3.session.Session().get_partition_for_region(region)


def _install(mp: pytest.MonkeyPatch, harness: MotoHarness) -> None:
    from moto.core.responses import ActionResult
    from moto.ebs.responses import EBSResponse
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses import EC2Response
    from moto.ec2.utils import random_id

    original_bdm = Ami.block_device_mappings
    mp.setattr(Ami, "block_device_mappings",
               property(lambda self: getattr(self, "recorded_bdm", None) or original_bdm.fget(self)))

    def _finish(self: Any, ami: Any, params: dict[str, Any], tags: dict[str, str]) -> None:
        ami.state = "pending"
        ami.root_device_type = "ebs"
        for attr, key in (("architecture", "Architecture"), ("boot_mode", "BootMode"),
                          ("root_device_name", "RootDeviceName"), ("virtualization_type", "VirtualizationType"),
                          ("ena_support", "EnaSupport"), ("imds_support", "ImdsSupport"),
                          ("sriov", "SriovNetSupport"), ("sriov_net_support", "SriovNetSupport")):
            if params.get(key) is not None:
                setattr(ami, attr, params[key])
        if tags:
            self.ec2_backend.create_tags([ami.id], tags)
        with harness.lock:
            harness.pending_images[ami.id] = PENDING_DESCRIBES

    def register_image(self: Any) -> ActionResult:
        names = ("Name", "Description", "Architecture", "RootDeviceName", "VirtualizationType", "BootMode",
                 "EnaSupport", "SriovNetSupport", "ImdsSupport", "BlockDeviceMappings", "TagSpecifications")
        params = {k: self._get_param(k) for k in names}
        with harness.lock:
            harness.registered.append((self.region, params))
        for ami in self.ec2_backend.amis.values():
            if ami.name == params["Name"] and ami.owner_id == ACCOUNT:
                raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {params['Name']} is already in use by "
                                     f"AMI {ami.id}")
        mappings = params["BlockDeviceMappings"] or []
        for mapping in mappings:
            snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot_id and snapshot_id not in self.ec2_backend.snapshots:
                raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
        ami = self.ec2_backend.register_image(params["Name"], params["Description"])
        ami.recorded_bdm = mappings
        _finish(self, ami, params, _tags_of(params["TagSpecifications"], "image"))
        return ActionResult({"ImageId": ami.id})

    def copy_image(self: Any) -> ActionResult:
        names = ("SourceImageId", "SourceRegion", "Name", "Description", "ClientToken", "CopyImageTags",
                 "TagSpecifications")
        params = {k: self._get_param(k) for k in names}
        with harness.lock:
            harness.copied.append((self.region, params))
            known = harness.tokens.get((self.region, "copy", params["ClientToken"] or ""))
        if known:
            return ActionResult({"ImageId": known})
        source = ec2_backends[ACCOUNT][params["SourceRegion"]].describe_images(ami_ids=[params["SourceImageId"]])[0]
        ami = self.ec2_backend.copy_image(source.id, params["SourceRegion"], params["Name"], params["Description"])
        snapshot = ami.ebs_snapshot
        _encrypt_by_default(self.ec2_backend, snapshot)  # a copy gets the destination region's default
        ami.recorded_bdm = [{**m, "Ebs": {**m.get("Ebs", {}), "SnapshotId": snapshot.id}}
                            for m in source.block_device_mappings]
        tags = {t["key"]: t["value"] for t in source.get_tags()} if params["CopyImageTags"] else {}
        tags.update(_tags_of(params["TagSpecifications"], "image"))
        fields = {"Architecture": source.architecture, "BootMode": source.boot_mode,
                  "RootDeviceName": source.root_device_name, "VirtualizationType": source.virtualization_type,
                  "EnaSupport": getattr(source, "ena_support", None),
                  "ImdsSupport": getattr(source, "imds_support", None), "SriovNetSupport": source.sriov}
        _finish(self, ami, fields, tags)
        snapshot_tags = _tags_of(params["TagSpecifications"], "snapshot")
        if snapshot_tags:
            self.ec2_backend.create_tags([snapshot.id], snapshot_tags)
        with harness.lock:
            if params["ClientToken"]:
                harness.tokens[(self.region, "copy", params["ClientToken"])] = ami.id
        return ActionResult({"ImageId": ami.id})

    original_describe_images = EC2Response.describe_images

    def describe_images(self: Any) -> Any:
        with harness.lock:
            for image_id, left in list(harness.pending_images.items()):
                ami = self.ec2_backend.amis.get(image_id)
                if ami is None:
                    continue
                if left <= 0:
                    ami.state = "available"
                    del harness.pending_images[image_id]
                else:
                    harness.pending_images[image_id] = left - 1
        result = original_describe_images(self)
        # "IncludeDisabled ... Default: No disabled AMIs are included in the response" (botocore ec2 model,
        # DescribeImagesRequest); moto lists them always.
        if not self._get_bool_param("IncludeDisabled", False):
            result.result["Images"] = [i for i in result.result["Images"] if i.state != "disabled"]
        return result

    def import_snapshot(self: Any) -> ActionResult:
        container = self._get_param("DiskContainer") or {}
        token = self._get_param("ClientToken")
        role = self._get_param("RoleName") or "vmimport"
        with harness.lock:
            known = harness.tokens.get((self.region, "import", token or ""))
        if known:
            return ActionResult({"ImportTaskId": known})
        from moto.iam.models import iam_backends
        try:
            iam_backends[ACCOUNT][_partition(self.region)].get_role(role)
        except Exception:
            raise EC2ClientError("InvalidParameter", f"The service role {role} provided does not exist or does "
                                 "not have sufficient permissions") from None
        bucket = container.get("UserBucket", {})
        task = ImportTask(task_id=f"import-snap-{random_id(size=17)}", region=self.region,
                          bucket=bucket.get("S3Bucket", ""), key=bucket.get("S3Key", ""),
                          format=(container.get("Format") or "RAW").upper(), token=token,
                          tags=[t for s in self._get_param("TagSpecifications") or [] for t in s.get("Tags", [])],
                          description=self._get_param("Description") or "", fail=False)
        with harness.lock:
            if harness.fail_next_imports:
                harness.fail_next_imports -= 1
                task.fail = True
            harness.import_tasks[task.task_id] = task
            if token:
                harness.tokens[(self.region, "import", token)] = task.task_id
        return ActionResult({"ImportTaskId": task.task_id, "Description": task.description,
                             "SnapshotTaskDetail": {"Status": "active", "Progress": "0",
                                                    "StatusMessage": "pending"}, "Tags": task.tags})

    steps = [("active", "0", "pending"), ("active", "25", "validating"), ("active", "60", "converting")]

    def _advance(task: ImportTask) -> dict[str, Any]:
        detail: dict[str, Any] = {"Format": task.format, "UserBucket": {"S3Bucket": task.bucket,
                                                                          "S3Key": task.key}}
        if task.step < len(steps):
            status, progress, message = steps[task.step]
            task.step += 1
            return {**detail, "Status": status, "Progress": progress, "StatusMessage": message}
        if task.fail:
            return {**detail, "Status": "error", "StatusMessage": "ClientError: Disk validation failed "
                    "[Unsupported specified file format] (injected)"}
        if task.snapshot_id is None:
            from moto.s3.models import s3_backends
            data = s3_backends[ACCOUNT][_partition(task.region)].get_object(task.bucket, task.key).value
            task.snapshot_id = _snapshot_from_bytes(task.region, _raw_bytes(data, task.format),
                                                    f"Created by AWS-VMImport service for {task.task_id}")
        return {**detail, "Status": "completed", "Progress": "100", "SnapshotId": task.snapshot_id}

    def describe_import_snapshot_tasks(self: Any) -> ActionResult:
        ids = self._get_param("ImportTaskIds") or []
        with harness.lock:
            tasks = [t for t in harness.import_tasks.values() if (not ids or t.task_id in ids)
                     and t.region == self.region]
            result = [{"ImportTaskId": t.task_id, "Description": t.description, "Tags": t.tags,
                       "SnapshotTaskDetail": _advance(t)} for t in tasks]
        return ActionResult({"ImportSnapshotTasks": result})

    def get_image_block_public_access_state(self: Any) -> ActionResult:
        return ActionResult({"ImageBlockPublicAccessState": harness.block_public_access.get(self.region,
                                                                                           "unblocked")})

    def get_snapshot_block_public_access_state(self: Any) -> ActionResult:
        return ActionResult({"State": harness.snapshot_block_public_access.get(self.region, "unblocked"),
                             "ManagedBy": "account"})

    original_modify_snapshot_attribute = EC2Response.modify_snapshot_attribute

    def get_ebs_default_kms_key_id(self: Any) -> ActionResult:
        return ActionResult({"KmsKeyId": _default_ebs_key(self.ec2_backend)})

    def modify_snapshot_attribute(self: Any) -> Any:
        # EBS User Guide, "Share an Amazon EBS snapshot": encrypted snapshots cannot be made public, and ones
        # encrypted with the AWS managed key cannot be shared at all. Public sharing is refused while snapshot
        # block public access is on (botocore ec2 model, SnapshotBlockPublicAccessState).
        snapshot = self.ec2_backend.snapshots.get(self._get_param("SnapshotId"))
        if self._get_param("OperationType") == "add" and snapshot is not None:
            public = "all" in (self._get_param("GroupNames") or [])
            if snapshot.encrypted and (public or snapshot.kms_key_id in (None, AWS_MANAGED_EBS_KEY)):
                raise EC2ClientError("InvalidParameter", "Encrypted snapshots cannot be made public, and ones "
                                     "encrypted with the AWS managed key cannot be shared.")
            state = harness.snapshot_block_public_access.get(self.region, "unblocked")
            if public and state != "unblocked":
                raise EC2ClientError("OperationNotPermitted", f"Block public access for snapshots is {state}")
        return original_modify_snapshot_attribute(self)

    original_deregister = EC2Response.deregister_image

    def deregister_image(self: Any) -> Any:
        # DeleteAssociatedSnapshots: the AMI's snapshots go too, except one another AMI also uses (botocore ec2
        # model, DeregisterImageRequest). moto ignores the flag.
        ami = self.ec2_backend.amis.get(self._get_param("ImageId"))
        snapshots = [m.get("Ebs", {}).get("SnapshotId") for m in (ami.block_device_mappings if ami else [])
                     if isinstance(m, dict)]
        result = original_deregister(self)
        if self._get_param("DeleteAssociatedSnapshots") and ami is not None:
            used = {m.get("Ebs", {}).get("SnapshotId") for other in self.ec2_backend.amis.values()
                    for m in other.block_device_mappings if isinstance(m, dict)}
            for snapshot_id in snapshots:
                if snapshot_id and snapshot_id not in used and snapshot_id in self.ec2_backend.snapshots:
                    self.ec2_backend.delete_snapshot(snapshot_id)
        return result

    for name, fn in (("register_image", register_image), ("copy_image", copy_image),
                     ("describe_images", describe_images), ("import_snapshot", import_snapshot),
                     ("describe_import_snapshot_tasks", describe_import_snapshot_tasks),
                     ("get_image_block_public_access_state", get_image_block_public_access_state),
                     ("get_snapshot_block_public_access_state", get_snapshot_block_public_access_state),
                     ("get_ebs_default_kms_key_id", get_ebs_default_kms_key_id),
                     ("modify_snapshot_attribute", modify_snapshot_attribute),
                     ("deregister_image", deregister_image)):
        mp.setattr(EC2Response, name, fn, raising=False)

    # EBS direct: ClientToken, pending until complete, checksums verified like the real service.
    from moto.core.exceptions import JsonRESTError

    original_start = EBSResponse.start_snapshot

    def start_snapshot(self: Any) -> Any:
        token = self._get_param("ClientToken")
        with harness.lock:
            known = harness.tokens.get((self.region, "ebs", token or ""))
        if known:
            snapshot = self.ebs_backend.snapshots[known]
            return ActionResult({"SnapshotId": known, "OwnerId": ACCOUNT, "Status": snapshot.status,
                                 "StartTime": snapshot.start_time, "VolumeSize": snapshot.volume_size,
                                 "BlockSize": BLOCK, "Tags": snapshot.tags})
        snapshot_id = original_start(self).result["SnapshotId"]
        ec2_snapshot = self.ebs_backend.ec2_backend.snapshots[snapshot_id]
        ec2_snapshot.status = "pending"
        _encrypt_by_default(self.ebs_backend.ec2_backend, ec2_snapshot)
        with harness.lock:
            if token:
                harness.tokens[(self.region, "ebs", token)] = snapshot_id
            harness.not_found_left[snapshot_id] = harness.new_snapshot_not_found
        return ActionResult({"SnapshotId": snapshot_id, "OwnerId": ACCOUNT, "Status": "pending",
                             "StartTime": self.ebs_backend.snapshots[snapshot_id].start_time,
                             "VolumeSize": self._get_param("VolumeSize"), "BlockSize": BLOCK,
                             "Tags": self._get_param("Tags") or []})

    original_put = EBSResponse.put_snapshot_block

    def put_snapshot_block(self: Any) -> Any:
        data = self._get_param("BlockData")
        data = data.read() if hasattr(data, "read") else data
        if isinstance(data, str):
            data = data.encode()
        checksum = self._get_param("Checksum")
        if self._get_param("DataLength") != BLOCK or len(data) != BLOCK:
            raise JsonRESTError("ValidationException", "DataLength must be 524288")
        if base64.b64encode(hashlib.sha256(data).digest()).decode() != checksum:
            raise JsonRESTError("ValidationException", "The checksum of the block does not match")
        snapshot_id = self._get_param("SnapshotId")
        with harness.lock:
            not_visible = harness.not_found_left.get(snapshot_id, 0) > 0
            if not_visible:
                harness.not_found_left[snapshot_id] -= 1
        if not_visible:
            error = JsonRESTError("ResourceNotFoundException", f"The snapshot {snapshot_id} does not exist "
                                  "(injected: not visible yet)")
            error.code = 404  # the ebs/2019-11-02 model gives ResourceNotFoundException httpStatusCode 404
            raise error
        snapshot = self.ebs_backend.snapshots.get(snapshot_id)
        if snapshot is None or snapshot.status != "pending":
            raise JsonRESTError("ValidationException", "The snapshot is not pending")
        return original_put(self)

    def complete_snapshot(self: Any) -> Any:
        snapshot_id = self._get_param("SnapshotId")
        snapshot = self.ebs_backend.snapshots[snapshot_id]
        blocks = snapshot.blocks
        digests = b"".join(base64.b64decode(blocks[i].checksum) for i in sorted(blocks))
        aggregate = base64.b64encode(hashlib.sha256(digests).digest()).decode()
        if self._get_param("ChangedBlocksCount") != len(blocks):
            raise JsonRESTError("ValidationException", f"ChangedBlocksCount {self._get_param('ChangedBlocksCount')}"
                                f" but the snapshot holds {len(blocks)} blocks")
        if (self._get_param("ChecksumAggregationMethod") != "LINEAR"
                or self._get_param("Checksum") != aggregate):
            raise JsonRESTError("ValidationException", "The aggregate checksum does not match")
        snapshot.status = "completed"
        self.ebs_backend.ec2_backend.snapshots[snapshot_id].status = "completed"
        return ActionResult({"Status": "completed"})

    mp.setattr(EBSResponse, "start_snapshot", start_snapshot)
    mp.setattr(EBSResponse, "put_snapshot_block", put_snapshot_block)
    mp.setattr(EBSResponse, "complete_snapshot", complete_snapshot)


def snapshot_blocks(region: str, snapshot_id: str) -> dict[int, bytes]:
    """What the (fake) EBS snapshot holds: block index -> 512 KiB of data (read from moto's backend)."""
    from moto.ebs.models import ebs_backends

    return {i: b.block_data for i, b in ebs_backends[ACCOUNT][region].snapshots[snapshot_id].blocks.items()}


@contextlib.contextmanager
def running_moto_server() -> Iterator[MotoHarness]:
    """moto's server on 127.0.0.1 (ephemeral port) with the recorder and the extensions above, until the block
    ends. The `moto_server` fixture is this; tests/demo.py uses it outside pytest."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request drowns the test logs
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    harness = MotoHarness(url=f"http://{host}:{port}")
    wsgi_server = server._server  # the werkzeug server: put the recorder in front of moto's app
    assert wsgi_server is not None
    wsgi_server.app = Recorder(wsgi_server.app, harness)
    mp = pytest.MonkeyPatch()
    _install(mp, harness)
    try:
        yield harness
    finally:
        mp.undo()
        server.stop()


def aws_environment(harness: MotoHarness) -> dict[str, str]:
    """What a boto3 client (and so eulerpub) needs to reach the server: the endpoint and the fake credentials."""
    return {"AWS_ENDPOINT_URL": harness.url, "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY, "AWS_DEFAULT_REGION": DEFAULT_REGION}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoHarness]:
    with running_moto_server() as harness:
        yield harness


@pytest.fixture
def moto(moto_server: MotoHarness) -> MotoHarness:
    moto_server.reset()
    return moto_server


@pytest.fixture
def aws_env(moto: MotoHarness, monkeypatch: pytest.MonkeyPatch) -> MotoHarness:
    for name, value in aws_environment(moto).items():
        monkeypatch.setenv(name, value)
    return moto
