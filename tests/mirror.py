"""A local openEuler mirror for tests: a threaded HTTP server over a directory in the real layout.

    openEuler-{VER}/virtual_machine_img/{ARCH}/openEuler-{VER}-{ARCH}.qcow2.xz   (+ .sha256sum)

It serves byte ranges like a real mirror, logs every request (method, path, Range header, status, body
bytes sent), and injects the faults the fetch code must survive: a connection dropped at a given byte, corrupt
bytes, 5xx responses, forced 404s, a server that ignores Range (from the first or a later request on), one
that never tells the file's size, and a connection that stalls mid-body until released.

    root = tmp_path / "mirror"
    publish_image(root, "24.03-LTS-SP1", "x86_64", Path("standin.qcow2"))   # or, already compressed:
    publish_compressed(root, "24.03-LTS-SP1", "x86_64", ensure_standin())
    with MirrorServer(root) as mirror:
        os.environ["EULERPUB_MIRROR"] = mirror.url
"""

from __future__ import annotations

import fnmatch
import hashlib
import lzma
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from eulerpub.catalog import CHECKSUM_SUFFIX, image_path

POLL_INTERVAL = 0.02  # seconds; how long stop() waits for the serving loop (the default 0.5 s adds up per test)
COPY_CHUNK = 256 << 10  # bytes per write on the slow (fault-injecting) path; small enough to cut precisely
STALL_LIMIT = 60.0  # seconds a stalled connection is held at most, so a test that forgets release() ends
XZ_PRESET = 0  # fastest: tests need a valid single-stream .xz quickly; the official -9 only changes the ratio


@dataclass(frozen=True)
class PublishedImage:
    """What `publish_image` wrote: the .xz, its .sha256sum, the digest, and the path below the mirror root."""

    xz_path: Path
    checksum_path: Path
    sha256: str
    url_path: str


def publish_image(mirror_root: Path, release: str, arch: str, qcow2_path: Path, *,
                  preset: int = XZ_PRESET) -> PublishedImage:
    """Put a local qcow2 into the mirror tree as openEuler publishes it: xz-compressed plus `.sha256sum`.

    The path comes from eulerpub's own catalog, so the mirror and the fetch code can never disagree on it.
    """
    url_path = image_path(release, arch)
    xz_path = Path(mirror_root) / url_path
    xz_path.parent.mkdir(parents=True, exist_ok=True)
    compress_xz(Path(qcow2_path), xz_path, preset=preset)
    digest = sha256_file(xz_path)
    checksum_path = xz_path.with_name(xz_path.name + CHECKSUM_SUFFIX)
    checksum_path.write_text(f"{digest}  {xz_path.name}\n")
    return PublishedImage(xz_path=xz_path, checksum_path=checksum_path, sha256=digest, url_path=url_path)


def publish_compressed(mirror_root: Path, release: str, arch: str, source_dir: Path) -> PublishedImage:
    """Put an image that is already published in this form (`source_dir` holds `openEuler-{VER}-{ARCH}.qcow2.xz`
    and its `.sha256sum`, as the stand-in's cache does) into the mirror tree, hard-linked when possible, else
    copied: the server serves regular files only, not symlinks that point out of its root."""
    url_path = image_path(release, arch)
    xz_path = Path(mirror_root) / url_path
    xz_path.parent.mkdir(parents=True, exist_ok=True)
    checksum_path = xz_path.with_name(xz_path.name + CHECKSUM_SUFFIX)
    for target in (xz_path, checksum_path):
        target.unlink(missing_ok=True)
        try:
            os.link(Path(source_dir) / target.name, target)
        except OSError:
            shutil.copyfile(Path(source_dir) / target.name, target)
    digest = checksum_path.read_text().split()[0]
    return PublishedImage(xz_path=xz_path, checksum_path=checksum_path, sha256=digest, url_path=url_path)


def compress_xz(source: Path, target: Path, *, preset: int = XZ_PRESET) -> None:
    """xz-compress a file as one stream, like openEuler's images (the `xz` tool if present: it is faster)."""
    if xz := shutil.which("xz"):
        with open(source, "rb") as src, open(target, "wb") as dst:
            subprocess.run([xz, f"-{preset}", "-c", "-T1"], stdin=src, stdout=dst, check=True)
        return
    compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=preset)
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(compressor.compress(chunk))
        dst.write(compressor.flush())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_qcow2_like(path: Path, size: int, *, seed: int = 0) -> Path:
    """A file shaped like a disk image for transfer tests: a real (empty) qcow2's metadata, so fetch's
    inspection accepts it, then a deterministic mix of zeroed clusters, low-entropy (text-like) clusters and
    incompressible clusters (unreferenced, so qemu-img ignores them), so xz shrinks it a few times, as it does
    a real root filesystem, rather than to nothing."""
    rng = random.Random(seed)
    text_alphabet = bytes(b"etaoinshrdlu /.\n"[b % 16] for b in range(256))  # 4 bits of entropy per byte
    cluster = 64 << 10  # qcow2's default cluster size
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    with open(path, "r+b") as out:
        written = -(-out.seek(0, os.SEEK_END) // cluster) * cluster  # the metadata, padded to whole clusters
        assert written < size, "the image must be larger than an empty qcow2"
        out.truncate(written)
        out.seek(written)
        while written < size:
            n = min(cluster, size - written)
            kind = rng.random()
            if kind < 0.35:
                block = bytes(n)
            elif kind < 0.90:
                block = rng.randbytes(n).translate(text_alphabet)
            else:
                block = rng.randbytes(n)
            out.write(block)
            written += n
    return path


# ---------------------------------------------------------------------------------------------------------
# Fault injection and the request log


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int


@dataclass
class _Fault:
    pattern: str
    kind: str  # "status", "drop", "corrupt", "ignore_range", "stall", "hide_size"
    times: int | None  # None: every time
    status: int = 0
    offset: int = 0
    after: int = 0  # matching requests let through before the fault starts firing


@dataclass
class Faults:
    """Faults keyed by a glob over the URL path (e.g. `*.qcow2.xz`); each fires `times` times, or always."""

    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)

    def fail(self, pattern: str, status: int = 503, times: int | None = 3) -> None:
        """Answer with `status` (e.g. 503, 404) instead of the file."""
        self._add(_Fault(pattern, "status", times, status=status))

    def drop_at(self, pattern: str, offset: int, times: int | None = 1) -> None:
        """Promise the whole body, then cut the connection when it reaches byte `offset` of the file.

        With `times=None` the server dies there for good: a request resuming at `offset` gets nothing.
        """
        self._add(_Fault(pattern, "drop", times, offset=offset))

    def corrupt(self, pattern: str, times: int | None = None) -> None:
        """Serve the file with one byte flipped in the middle (same length, so only a digest can tell)."""
        self._add(_Fault(pattern, "corrupt", times))

    def stall_at(self, pattern: str, offset: int, times: int | None = 1) -> None:
        """Send the body up to byte `offset` of the file, then hold the connection open without sending more
        until `release()` (then close it): a transfer that is stuck mid-range, for kill tests."""
        self._add(_Fault(pattern, "stall", times, offset=offset))

    def release(self) -> None:
        """Let stalled connections go (they close without sending the rest)."""
        self.released.set()

    def hide_size(self, pattern: str, times: int | None = None) -> None:
        """Never tell the file's size, as a server streaming a file it is still receiving does: a 206 says
        `Content-Range: bytes A-B/*`, a 200 has no Content-Length (its body ends when the connection closes)."""
        self._add(_Fault(pattern, "hide_size", times))

    def ignore_range(self, pattern: str, times: int | None = None, *, after: int = 0) -> None:
        """Answer Range requests with 200 and the whole file, as some servers and proxies do (from the
        request after the first `after` Range requests on)."""
        self._add(_Fault(pattern, "ignore_range", times, after=after))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str, kinds: tuple[str, ...], within: tuple[int, int] | None = None) -> _Fault | None:
        """The first armed fault of these kinds for `path` (whose offset lies in `within`, if given), counted
        as used."""
        with self._lock:
            for fault in self._faults:
                if within is not None and not within[0] <= fault.offset < within[1]:
                    continue
                if fault.kind in kinds and fnmatch.fnmatch(path, fault.pattern) and fault.times != 0:
                    if fault.after:
                        fault.after -= 1
                        continue
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real mirrors do, so a dropped connection is a real event
    server: _Server

    def log_message(self, format, *args):  # quiet: the request log is the record
        pass

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_GET(self):
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        range_header = self.headers.get("Range")
        faults = self.server.faults
        if fault := faults.take(path, ("status",)):
            return self._empty(fault.status, path, range_header)
        file = (self.server.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.server.root) or not file.is_file():
            return self._empty(HTTPStatus.NOT_FOUND, path, range_header)
        size = file.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        if range_header and not (send_body and faults.take(path, ("ignore_range",))):
            parsed = parse_range(range_header, size)
            if parsed is None:
                return self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, path, range_header,
                                   {"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = HTTPStatus.PARTIAL_CONTENT
        hide = send_body and faults.take(path, ("hide_size",))
        self.send_response(status)
        if hide and status == HTTPStatus.OK:
            self.close_connection = True  # the end of the body is the end of the connection
        else:
            self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{'*' if hide else size}")
        self.end_headers()
        sent = self._send_body(file, path, start, end + 1, size) if send_body else 0
        self.server.log(Request(self.command, path, range_header, int(status), sent))

    def _send_body(self, file: Path, path: str, start: int, stop: int, size: int) -> int:
        faults = self.server.faults
        drop = faults.take(path, ("drop", "stall"), within=(start, stop))  # only where the cut falls in the body
        corrupt = faults.take(path, ("corrupt",))
        self.wfile.flush()
        with open(file, "rb") as handle:
            if not drop and not corrupt:
                return self.connection.sendfile(handle, start, stop - start)
            limit = drop.offset if drop and start <= drop.offset < stop else stop
            flip_at = size // 2 if corrupt else -1
            sent, position = 0, start
            handle.seek(start)
            while position < limit:
                chunk = bytearray(handle.read(min(COPY_CHUNK, limit - position)))
                if position <= flip_at < position + len(chunk):
                    chunk[flip_at - position] ^= 0xFF
                self.wfile.write(chunk)
                sent += len(chunk)
                position += len(chunk)
        if drop:
            self.wfile.flush()
            if drop.kind == "stall":
                faults.released.wait(timeout=STALL_LIMIT)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        return sent

    def _empty(self, status: int, path: str, range_header: str | None, headers: dict[str, str] | None = None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.log(Request(self.command, path, range_header, int(status), 0))


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as (first, last) inclusive, clamped to the file; None if not satisfiable."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    if not match.group(1):  # suffix range: the last N bytes
        length = int(match.group(2))
        return (max(size - length, 0), size - 1) if length and size else None
    first = int(match.group(1))
    last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    return (first, last) if first < size and first <= last else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root.resolve()
        self.faults = Faults()
        self.requests: list[Request] = []
        self._log_lock = threading.Lock()

    def log(self, request: Request) -> None:
        with self._log_lock:
            self.requests.append(request)

    def handle_error(self, request, client_address):
        """A client hanging up mid-body is part of the tests; anything else is a bug in this server."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class MirrorServer:
    """The mirror on 127.0.0.1 with a free port; use as a context manager or call start()/stop()."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = _Server(self.root)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                        name="test-mirror", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def faults(self) -> Faults:
        return self._server.faults

    @property
    def requests(self) -> list[Request]:
        """Every request answered so far, in order (a copy)."""
        with self._server._log_lock:
            return list(self._server.requests)

    def clear_log(self) -> None:
        with self._server._log_lock:
            self._server.requests.clear()

    def bytes_sent(self, pattern: str = "*") -> int:
        return sum(r.bytes_sent for r in self.requests if fnmatch.fnmatch(r.path, pattern))

    def start(self) -> MirrorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

