"""Fetch an official openEuler base image: verified, decompressed while streaming, cached by digest, resumable.

The published `.qcow2.xz` is hashed and decompressed as its bytes arrive (the decoder runs on a worker
thread, so decoding overlaps the network), and the image is read from the network once, never re-read.
The compressed bytes are also kept in the cache's partial area while the download runs: that is what makes
a resume correct. An xz decoder's state cannot be saved, so a
download resumed in a later run first replays the kept compressed prefix through a fresh hasher and a fresh
decoder (a local, CPU-only pass), then continues from the network with an HTTP Range request. Within one
run, a dropped connection needs no replay: the live hasher and decoder simply carry on.

Far from the mirror, one connection is capped by the mirror's per-connection limit and by TCP over a long
RTT, so the file is fetched as fixed-size byte ranges over several connections at once (`connections`). Each
range is written at its offset in the kept partial; the digest and the decoder read the partial in order as
its contiguous prefix grows, so the sha256 is still over the whole file in order and decompression overlaps
the download. A small range map beside the partial (written atomically after each range) says which ranges
are complete, so a run killed mid-download fetches only the missing ranges next time. A server that ignores
Range (a 200 to a Range request) or gives no total size is read as one stream, as before.

Cache layout (below `paths.cache_dir()`):

    images/<sha256>/<name>.qcow2   verified, decompressed images, keyed by the digest of the published .xz
    index.json                     URL -> digest, file and size: how a repeat fetch finds its image offline
    partial/<sha256>.qcow2.xz      the compressed bytes of an unfinished download (deleted once verified)
    partial/<sha256>.qcow2.part    the decompressed output being written (renamed into images/ when verified)
    partial/<sha256>.ranges.json   which byte ranges of the kept .xz are complete (parallel downloads only)

A file only ever reaches `images/` by an atomic rename after its digest matched and `imagefile.inspect` found a
self-contained qcow2 (no backing file, no external data file), so whatever is there is good; a mismatch or a
refusal deletes the partial files and leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import lzma
import os
import queue
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import urllib3

from eulerpub import __version__, catalog, imagefile, paths, retry, ui
from eulerpub.catalog import ImageSource
from eulerpub.errors import ChecksumError, EulerpubError
from eulerpub.jsonfile import write_json_atomic

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20  # network read size: per-chunk Python overhead is noise at 1 MiB, and the bar stays smooth
# Cap on decompressed bytes per lzma call. A qcow2's zeroed runs expand a thousandfold; without a cap one
# network chunk could become gigabytes in memory.
DECOMPRESS_LIMIT = 8 << 20
# Chunks waiting for the decoder thread: enough to ride out a slow write, bounded to a few dozen MiB.
DECODE_QUEUE_CHUNKS = 32
CONNECT_TIMEOUT = 10.0  # seconds; a mirror that cannot accept a connection in 10 s is down, retry it
READ_TIMEOUT = 60.0     # seconds between bytes; long enough for a busy mirror, short enough to notice a dead one
INDEX_VERSION = 1
# Parallel Range connections by default. One connection from far away is held to a few MB/s by the mirror's
# per-connection limit and TCP's window over a long RTT; four overlap that fourfold while staying polite to
# volunteer mirrors (download accelerators default to about as many) and within what xz decodes on one core.
DEFAULT_CONNECTIONS = 4
MAX_CONNECTIONS = 16
# Bytes per Range request. The decoder reads the contiguous prefix, which grows only as fast as the range it
# waits for arrives (one connection's rate) until that range is whole; so the smaller the ranges, the sooner
# the decoder has a backlog to work through at its own speed. Measured at 40 ms RTT and 4 MB/s per connection
# (docs/benchmarks.md): with 8 MiB ranges the decoder idled for most of the first 2 s and finished seconds
# after the last byte. Each range costs one round trip on its kept-alive connection: ~8% of a 2 MiB range at
# 4 MB/s and 40 ms, time the network has to spare while the decoder (one core) is the slower of the two.
# A kill loses at most one range per connection.
RANGE_SIZE = 2 << 20
RANGES_VERSION = 1
STOP_WAIT = 2.0  # seconds a stopped download waits for each connection's worker to notice
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class DownloadError(EulerpubError):
    """The mirror does not have, or would not serve, what the catalog says it should."""


@dataclass(frozen=True)
class FetchedImage:
    """A verified, decompressed base image in the cache.

    `sha256` is the digest of the `.qcow2.xz` as published (what the `.sha256sum` vouches for), so the build
    record can name exactly which official image it started from.
    """

    path: Path
    sha256: str
    url: str
    from_cache: bool


# ---------------------------------------------------------------------------------------------------------
# Pure helpers


def parse_checksum(text: str, file_name: str) -> str | None:
    """The sha256 for `file_name` in `sha256sum` output (GNU `<hex>  <name>` or BSD `SHA256 (<name>) = <hex>`).

    A file with exactly one digest is accepted whatever name it gives: mirrors rename files, and a wrong
    digest is caught by the verification anyway. Returns None when there is no usable digest.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if bsd := re.fullmatch(r"SHA256 \((.+)\) = ([0-9a-fA-F]{64})", line):
            name, digest = bsd.group(1), bsd.group(2)
        elif len(parts := line.split(maxsplit=1)) == 2 and _SHA256_HEX.match(parts[0]):
            digest, name = parts[0], parts[1].lstrip("*")
        else:
            continue
        found[Path(name.strip()).name] = digest.lower()
    if file_name in found:
        return found[file_name]
    digests = set(found.values())
    return digests.pop() if len(digests) == 1 else None


def qcow2_name(file_name: str) -> str:
    """The decompressed image's file name: the published name without `.xz`."""
    return file_name.removesuffix(".xz")


def content_range_start(header: str | None) -> int | None:
    """The first byte offset of a `Content-Range: bytes START-END/TOTAL` header, None if absent or odd."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (header or "").strip())
    return int(match.group(1)) if match else None


def content_range_total(header: str | None) -> int | None:
    """The full length in a `Content-Range` header (`bytes */TOTAL` or `bytes A-B/TOTAL`), None if unknown."""
    match = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", (header or "").strip())
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------------------
# The cache


@dataclass(frozen=True)
class CacheLayout:
    """Where each piece of the download cache lives (see the module docstring)."""

    root: Path

    @property
    def index(self) -> Path:
        return self.root / "index.json"

    @property
    def partial_dir(self) -> Path:
        return self.root / "partial"

    def image(self, digest: str, file_name: str) -> Path:
        return self.root / "images" / digest / qcow2_name(file_name)

    def partial_xz(self, digest: str) -> Path:
        return self.partial_dir / f"{digest}.qcow2.xz"

    def partial_qcow2(self, digest: str) -> Path:
        return self.partial_dir / f"{digest}.qcow2.part"

    def partial_ranges(self, digest: str) -> Path:
        return self.partial_dir / f"{digest}.ranges.json"

    def lock(self, name: str) -> Path:
        return self.partial_dir / f"{name}.lock"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two runs never write the same partial file or the index at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_index(layout: CacheLayout) -> dict[str, dict[str, Any]]:
    """URL -> {sha256, file, size}. A missing or unreadable index is empty: it is a cache, not a record."""
    try:
        data = json.loads(layout.index.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cache index %s: %s", layout.index, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION or not isinstance(data.get("images"), dict):
        return {}
    return data["images"]


def record_in_index(layout: CacheLayout, url: str, digest: str, file_name: str, size: int) -> None:
    """Remember which verified image a URL gave, so the next fetch of that URL needs no network."""
    with _locked(layout.lock("index")):
        images = read_index(layout)
        images[url] = {"sha256": digest, "file": qcow2_name(file_name), "size": size,
                       "fetched_at": datetime.now(UTC).isoformat(timespec="seconds")}
        write_json_atomic(layout.index, {"version": INDEX_VERSION, "images": images})


def find_cached(layout: CacheLayout, url: str) -> FetchedImage | None:
    """The cached image an earlier fetch of `url` verified, if it is still there with its recorded size."""
    entry = read_index(layout).get(url)
    if not entry or not _SHA256_HEX.match(str(entry.get("sha256", ""))):
        return None
    path = layout.image(entry["sha256"], str(entry.get("file", "")))
    if path.name != entry.get("file") or not _has_size(path, entry.get("size")) or not _self_contained(path):
        return None
    return FetchedImage(path=path, sha256=entry["sha256"], url=url, from_cache=True)


def find_by_digest(layout: CacheLayout, digest: str, file_name: str) -> Path | None:
    """The cached image with this digest, whichever URL brought it (another mirror, an older index)."""
    path = layout.image(digest, file_name)
    sizes = {e.get("size") for e in read_index(layout).values() if e.get("sha256") == digest}
    if sizes:
        return path if any(_has_size(path, s) for s in sizes) and _self_contained(path) else None
    return path if path.is_file() and _self_contained(path) else None  # only a verified file is renamed there


def _self_contained(path: Path) -> bool:
    """A cached image is inspected again before it is used: a cache written before eulerpub inspected fetched
    images may hold one that is not a self-contained qcow2. Such a file is deleted, so it is fetched again."""
    try:
        imagefile.inspect(path, "qcow2", bootable=False)
    except imagefile.BadImage as exc:
        log.warning("deleting a cached image that is not a self-contained qcow2: %s", exc)
        path.unlink(missing_ok=True)
        return False
    return True


def _has_size(path: Path, size: object) -> bool:
    try:
        return isinstance(size, int) and path.stat().st_size == size
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------------------
# Streaming: hash, keep, decompress


class XzToFile:
    """Decompresses xz as chunks arrive and writes the result to a file, in bounded memory.

    A decoding error is latched rather than raised: the download carries on so the digest can still be
    computed, because a corrupt download must be reported with both digests, not as an xz error.
    """

    def __init__(self, out) -> None:
        self._out = out
        self._decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        self.error: str | None = None

    def feed(self, data: bytes) -> None:
        if self.error is None:
            try:
                self._feed(data)
            except lzma.LZMAError as exc:
                self.error = str(exc)

    def _feed(self, data: bytes) -> None:
        while True:
            if self._decoder.eof:  # a stream ended: skip its padding, then decode any concatenated stream
                rest = (self._decoder.unused_data + data).lstrip(b"\0")
                if not rest:
                    return
                self._decoder, data = lzma.LZMADecompressor(format=lzma.FORMAT_XZ), rest
            self._out.write(self._decoder.decompress(data, max_length=DECOMPRESS_LIMIT))
            data = b""
            if self._decoder.needs_input and not self._decoder.eof:
                return

    @property
    def complete(self) -> bool:
        """True when the input so far ends exactly at the end of an xz stream."""
        return self.error is None and self._decoder.eof


class BackgroundXz:
    """Runs an XzToFile on a worker thread, so decompression (liblzma releases the GIL) overlaps receiving,
    hashing and keeping the compressed bytes. The queue is bounded, so memory stays flat when the network
    outruns the decoder: the receiver simply waits."""

    def __init__(self, out) -> None:
        self._decoder = XzToFile(out)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=DECODE_QUEUE_CHUNKS)
        self._failure: BaseException | None = None  # e.g. a full disk while writing the output
        self._thread = threading.Thread(target=self._work, name="eulerpub-unxz", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._decoder.feed(data)
                except BaseException as exc:  # handed to the receiving thread in feed()/finish()
                    self._failure = exc

    def feed(self, data: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._queue.put(data)

    def finish(self) -> XzToFile:
        """Wait until everything fed so far is decoded and written; the decoder then tells the outcome."""
        self._queue.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        return self._decoder


class Transfer:
    """One download in progress. The kept compressed partial, the running digest and the decompressed
    output always describe the same first `received` bytes, which is what makes resuming safe."""

    def __init__(self, xz_path: Path, qcow2_path: Path, ranges_path: Path | None = None) -> None:
        self.xz_path = xz_path
        self.qcow2_path = qcow2_path
        self.ranges_path = ranges_path
        xz_path.parent.mkdir(parents=True, exist_ok=True)
        # Written at offsets (never O_APPEND: pwrite would ignore the offset); lives across several requests.
        self._xz = os.open(xz_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._out = open(qcow2_path, "wb")  # noqa: SIM115 - closed in close()
        self._unxz: BackgroundXz | None = None
        self._start_over(truncate_xz=False)

    def _start_over(self, *, truncate_xz: bool) -> None:
        self._stop_decoding()
        if truncate_xz:
            os.ftruncate(self._xz, 0)
        self._out.seek(0)
        self._out.truncate(0)
        self._hash = hashlib.sha256()
        self._unxz = BackgroundXz(self._out)
        self.received = 0

    def restart(self) -> None:
        """Forget every byte so far (the server ignored our Range, or the partial cannot be continued)."""
        self._start_over(truncate_xz=True)

    def replay(self, upto: int | None = None) -> int:
        """Feed kept compressed bytes (up to offset `upto`, default all) through the hasher and decoder, in
        order from where they stand; return how many bytes they have seen. This is how a later run catches up
        with what an earlier one kept, and how a ranged download hashes its contiguous prefix as it grows."""
        while (want := CHUNK_SIZE if upto is None else min(CHUNK_SIZE, upto - self.received)) > 0:
            if not (chunk := os.pread(self._xz, want, self.received)):
                break
            self._consume(chunk)
        return self.received

    def truncate_to(self, size: int) -> None:
        """Keep only the first `size` compressed bytes (before a single stream continues a ranged partial)."""
        os.ftruncate(self._xz, size)

    def feed(self, chunk: bytes) -> None:
        os.pwrite(self._xz, chunk, self.received)
        self._consume(chunk)

    def _consume(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._unxz.feed(chunk)
        self.received += len(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def finish_decoding(self) -> str | None:
        """Wait for the decoder to catch up; return why the received bytes are not one whole xz file, if so."""
        assert self._unxz is not None
        decoder = self._unxz.finish()
        if decoder.error:
            return decoder.error
        return None if decoder.complete else "the xz stream ends early"

    def _stop_decoding(self) -> None:
        if self._unxz is not None:
            with contextlib.suppress(Exception):  # its output is being thrown away
                self._unxz.finish()

    def close(self) -> None:
        """Close both files, the output safely on disk first: it is about to be renamed into the cache, and
        a rename that outlives its data after a power cut would leave a plausible-looking broken image."""
        self._close_xz()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def _close_xz(self) -> None:
        if self._xz >= 0:  # once only: a second close could hit a descriptor another thread has reopened
            os.close(self._xz)
            self._xz = -1

    def discard(self, *, keep_compressed: bool) -> None:
        """Remove the decompressed output; also the compressed partial unless a later run may resume it."""
        self._stop_decoding()
        self._close_xz()
        self._out.close()
        paths_to_remove = [self.qcow2_path] + ([] if keep_compressed else [self.xz_path, self.ranges_path])
        for path in paths_to_remove:
            if path is not None:
                path.unlink(missing_ok=True)


class ConnectionLost(ConnectionError):
    """The body ended before its end; transient (a ConnectionError for the retry policy), resumed with Range."""


class _LazyProgress:
    """A byte progress bar opened when the first response tells the total size, shared by every retry."""

    def __init__(self, stack: contextlib.ExitStack, description: str, enabled: bool) -> None:
        self._stack, self._description, self._enabled = stack, description, enabled
        self._advance: Callable[[int], None] | None = None

    def start(self, total: int | None, already: int) -> None:
        if self._advance is None:
            bar = ui.byte_progress(self._description, total) if self._enabled else contextlib.nullcontext(_ignore)
            self._advance = self._stack.enter_context(bar)
            if already:
                self._advance(already)

    def __call__(self, n: int) -> None:
        if self._advance is not None:
            self._advance(n)


def _ignore(_n: int) -> None:
    pass


# ---------------------------------------------------------------------------------------------------------
# HTTP


def new_session() -> requests.Session:
    """A session that asks for the bytes as stored: a transparently gzipped body would break Range offsets."""
    session = requests.Session()
    session.headers.update({"User-Agent": f"eulerpub/{__version__}", "Accept-Encoding": "identity"})
    return session


def _get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    """GET that raises (transiently) on 5xx/429 and returns every other status for the caller to judge."""
    response = session.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
    if response.status_code >= 500 or response.status_code == 429:
        response.close()
        response.raise_for_status()
    return response


def _exists(session: requests.Session, url: str) -> bool:
    response = session.head(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=True)
    if response.status_code >= 500 or response.status_code == 429:
        response.raise_for_status()
    return response.ok


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionLost):
        return str(exc)
    if (host := retry.unresolvable_host(exc)) is not None:
        return (f"cannot resolve {host} (offline, or no DNS); pass --mirror or set EULERPUB_MIRROR to a mirror "
                "this machine can reach")
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} {response.reason}"
    return str(exc.__cause__ or exc) or type(exc).__name__


def fetch_expected_digest(session: requests.Session, source: ImageSource) -> str:
    """The digest the mirror's `.sha256sum` vouches for. No checksum, no download: an unverified base image
    would end up in every published cloud image."""
    try:
        response = retry.call(_get, session, source.checksum_url)
        if response.status_code == 404:
            image_there = retry.call(_exists, session, source.url)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot read {source.checksum_url}: {_describe(exc)}") from exc
    if response.status_code == 404:
        if image_there:
            raise DownloadError(f"{source.checksum_url} is missing (HTTP 404): the mirror has the image but not "
                                "its checksum, and eulerpub does not use an unverified base image",
                                hint="try another --mirror, or wait for the mirror to finish syncing")
        raise DownloadError(f"the mirror has no openEuler {source.release} {source.arch} image: "
                            f"{source.url} returned HTTP 404",
                            hint="check that the mirror carries this release, or pass another --mirror")
    if not response.ok:
        raise DownloadError(f"cannot read {source.checksum_url}: HTTP {response.status_code} {response.reason}")
    digest = parse_checksum(response.text, source.file_name)
    if digest is None:
        raise ChecksumError(f"{source.checksum_url} holds no sha256 for {source.file_name}")
    return digest


def _request_more(session: requests.Session, url: str, transfer: Transfer, bar: _LazyProgress,
                  opened: requests.Response | None = None) -> None:
    """One HTTP request that continues the transfer from `transfer.received` to the end of the file (or
    `opened`, a response already received to a request from that offset)."""
    offset = transfer.received
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with opened or _get(session, url, headers=headers, stream=True) as response:
        total = _expected_total(response, offset)
        if response.status_code == 416 and total == offset:
            return  # the kept partial is already the whole file
        if response.status_code == 416 or (response.status_code == 206
                                           and content_range_start(response.headers.get("Content-Range")) != offset):
            log.warning("%s: the server cannot continue at byte %d; starting over", url, offset)
            transfer.restart()
            raise ConnectionLost(f"the server cannot resume at byte {offset}; starting over")
        if response.status_code == 200 and offset:
            log.info("%s: the server ignored the Range request; downloading from the start", url)
            transfer.restart()
        elif response.status_code not in (200, 206):
            raise DownloadError(f"cannot download {url}: HTTP {response.status_code} {response.reason}")
        bar.start(total, transfer.received)
        try:
            # read1 hands over every byte received before a connection drops, so a resume starts exactly where
            # the data stopped (a fixed-size read would lose the buffer it was filling).
            while chunk := response.raw.read1(CHUNK_SIZE, decode_content=False):
                transfer.feed(chunk)
                bar(len(chunk))
        except urllib3.exceptions.HTTPError as exc:  # dropped connection or read timeout: resume with Range
            raise ConnectionLost(f"the connection was lost at byte {transfer.received} of {total}") from exc
        if total is not None and transfer.received < total:
            raise ConnectionLost(f"the connection was closed at byte {transfer.received} of {total}")


def _expected_total(response: requests.Response, offset: int) -> int | None:
    """The full size of the file from a response's headers, whatever the status."""
    if response.status_code in (206, 416):
        return content_range_total(response.headers.get("Content-Range"))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() and response.status_code == 200 else None


def download(session: requests.Session, source: ImageSource, expected: str, layout: CacheLayout,
             *, progress: bool, connections: int = DEFAULT_CONNECTIONS) -> Path:
    """Download, hash and decompress one image into the cache; resume what an earlier run left."""
    transfer = Transfer(layout.partial_xz(expected), layout.partial_qcow2(expected), layout.partial_ranges(expected))
    try:
        with contextlib.ExitStack() as stack:
            bar = _LazyProgress(stack, f"fetching {source.file_name}", progress)
            try:
                if connections > 1:
                    done, opened = _receive_ranges(session, source.url, transfer, bar, connections)
                else:
                    _as_one_stream(transfer)
                    done, opened = False, None
                if not done:
                    _receive(session, source, transfer, bar, opened)
            except (requests.RequestException, ConnectionLost) as exc:
                raise DownloadError(f"cannot download {source.url}: {_describe(exc)}",
                                    hint="re-run the same command to resume where it stopped") from exc
    except BaseException:
        transfer.discard(keep_compressed=True)  # interrupted: the next run resumes from the kept bytes
        raise
    return _verify_and_store(transfer, source, expected, layout)


def _receive(session: requests.Session, source: ImageSource, transfer: Transfer, bar: _LazyProgress,
             opened: requests.Response | None = None) -> None:
    """One stream: replay what an earlier run kept, then request the rest until the whole file has arrived
    (the first attempt may use `opened`, a response already received for the kept offset)."""
    if kept := transfer.replay():
        log.info("resuming %s at %s (re-reading the kept part first)", source.file_name, ui.human_size(kept))
    for attempt in retry.retrying(progress=lambda: transfer.received):
        with attempt:
            first, opened = opened, None
            _request_more(session, source.url, transfer, bar, first)


# ---------------------------------------------------------------------------------------------------------
# Parallel ranges


@dataclass
class RangeMap:
    """Which fixed-size byte ranges of a `total`-byte file are complete in the kept partial."""

    total: int
    range_size: int
    done: set[int]

    @property
    def count(self) -> int:
        return -(-self.total // self.range_size)

    def bounds(self, index: int) -> tuple[int, int]:
        return index * self.range_size, min((index + 1) * self.range_size, self.total)

    def missing(self) -> list[int]:
        return [i for i in range(self.count) if i not in self.done]

    def done_bytes(self) -> int:
        return sum(self.bounds(i)[1] - self.bounds(i)[0] for i in self.done)

    def contiguous_end(self) -> int:
        """Where the first missing range starts: every byte before it is kept."""
        first = next((i for i in range(self.count) if i not in self.done), self.count)
        return self.bounds(first)[0] if first < self.count else self.total

    def save(self, path: Path) -> None:
        write_json_atomic(path, {"version": RANGES_VERSION, "total": self.total, "range_size": self.range_size,
                                  "done": sorted(self.done)})

    @classmethod
    def load(cls, path: Path) -> RangeMap | None:
        """The map an earlier run left, or None if there is none or it is not one this version wrote."""
        try:
            data = json.loads(path.read_text())
            rmap = cls(int(data["total"]), int(data["range_size"]), {int(i) for i in data["done"]})
        except (OSError, ValueError, TypeError, KeyError):  # missing, or not a map (the caller tells which)
            return None
        if data.get("version") != RANGES_VERSION or rmap.range_size <= 0 or rmap.total <= 0 \
                or not rmap.done <= set(range(rmap.count)):
            return None
        return rmap


class RangesRefused(Exception):
    """The server stopped honouring Range mid-download (not transient: the download goes on as one stream)."""


class _Stopped(Exception):
    """Another range failed, or the run was interrupted: this worker gives up its range (it stays missing)."""


def _kept_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _kept_ranges(transfer: Transfer) -> RangeMap | None:
    """The range map of the kept partial. A map that is there but unreadable says nothing about which parts of
    a sparse partial hold data, so the partial is started over (never taken for a contiguous prefix)."""
    assert transfer.ranges_path is not None
    rmap = RangeMap.load(transfer.ranges_path)
    if rmap is None and transfer.ranges_path.exists():
        log.warning("%s is unreadable; downloading from the start", transfer.ranges_path)
        transfer.restart()
        transfer.ranges_path.unlink()
    return rmap


def _as_one_stream(transfer: Transfer) -> None:
    """Turn a ranged partial into a single stream's: keep only its contiguous prefix, drop the map."""
    assert transfer.ranges_path is not None
    if (rmap := _kept_ranges(transfer)) is not None:
        transfer.truncate_to(rmap.contiguous_end())
        transfer.ranges_path.unlink(missing_ok=True)


def _receive_ranges(session: requests.Session, url: str, transfer: Transfer, bar: _LazyProgress,
                    connections: int) -> tuple[bool, requests.Response | None]:
    """Fetch the missing ranges over `connections` connections; (True, None) when every byte is kept and hashed.

    Otherwise the partial has been made a single stream's (see `_as_one_stream`) and the caller continues as
    one stream, with the response to use first (the server answered a Range request with the whole file).
    """
    assert transfer.ranges_path is not None
    kept = _kept_ranges(transfer)
    if kept is not None and not kept.missing():  # killed after the last range, before the verification
        transfer.replay(upto=kept.total)
        return True, None
    range_size = kept.range_size if kept else RANGE_SIZE
    first = kept.missing()[0] if kept else _kept_size(transfer.xz_path) // range_size  # a stream's whole ranges
    start = first * range_size
    probe = retry.call(_get, session, url, headers={"Range": f"bytes={start}-{start + range_size - 1}"},
                       stream=True)
    total = content_range_total(probe.headers.get("Content-Range")) if probe.status_code == 206 else None
    if total is None or content_range_start(probe.headers.get("Content-Range")) != start:
        log.info("%s: no usable Range support (HTTP %d); downloading as one stream", url, probe.status_code)
        _as_one_stream(transfer)
        if probe.status_code == 200:
            return False, probe  # the whole file: the single stream's first attempt reads it
        probe.close()
        return False, None
    if kept is None or kept.total != total:
        if kept is not None:  # the file changed size on the mirror: nothing kept can be trusted
            log.warning("%s: the mirror's file is %d bytes, the kept partial's %d; starting over", url, total,
                        kept.total)
            transfer.restart()
            probe.close()  # it asked for a range of the old file; range 0's worker makes its own request
            probe, first = None, 0
        kept = RangeMap(total, range_size, set(range(first)))
        kept.save(transfer.ranges_path)
    if kept.done:
        log.info("resuming %s: %s kept, re-reading it first", url, ui.human_size(kept.done_bytes()))
    transfer.replay(upto=kept.contiguous_end())
    bar.start(total, kept.done_bytes())
    try:
        _run_ranges(session, url, transfer, kept, bar, connections, probe, first)
    except RangesRefused as exc:
        log.warning("%s: %s; downloading the rest as one stream", url, exc)
        _as_one_stream(transfer)
        return False, None
    transfer.replay(upto=total)
    return True, None


def _run_ranges(session: requests.Session, url: str, transfer: Transfer, rmap: RangeMap, bar: _LazyProgress,
                connections: int, probe: requests.Response | None, first: int) -> None:
    """Workers fetch ranges from a shared queue (the first takes `probe`, the response for range `first`);
    this thread saves the map after each range, advances the digest and decoder over the contiguous prefix
    (into the first missing range too, as far as its worker has written it: a range is written in order, so
    decoding starts with the first bytes, not when the first range is whole), and moves the one progress bar."""
    assert transfer.ranges_path is not None
    todo = deque(i for i in rmap.missing() if i != first)
    todo_lock = threading.Lock()
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def next_range() -> int | None:
        with todo_lock:
            return todo.popleft() if todo else None

    def work(own: requests.Session, index: int | None, opened: requests.Response | None) -> None:
        try:
            while index is not None and not stop.is_set():
                _fetch_range(own, url, transfer.xz_path, rmap.bounds(index), events, stop, opened)
                events.put(("done", index))
                index, opened = next_range(), None
        except BaseException as exc:  # handed to the coordinating thread
            events.put(("failed", exc))
        finally:
            if opened is not None:
                opened.close()
            if own is not session:
                own.close()

    remaining = len(todo) + 1
    workers = [threading.Thread(target=work, name=f"eulerpub-range-{n}", daemon=True,
                                args=(session, first, probe) if n == 0 else (new_session(), next_range(), None))
               for n in range(min(connections, remaining))]
    for worker in workers:
        worker.start()
    try:
        while remaining:
            kind, value = events.get()
            if kind == "bytes":
                count, range_start, written = value
                bar(count)
                # the range the prefix waits for; in 1 MiB steps, as the network's small reads add up
                if range_start == rmap.contiguous_end() and written - transfer.received >= CHUNK_SIZE:
                    transfer.replay(upto=written)
            elif kind == "done":
                remaining -= 1
                rmap.done.add(value)
                rmap.save(transfer.ranges_path)
                transfer.replay(upto=rmap.contiguous_end())
            elif not isinstance(value, _Stopped):
                raise value
    finally:
        stop.set()
        for worker in workers:
            # A worker stops at its next chunk. One blocked on a silent connection is left behind (a daemon,
            # with its own descriptor, writing only inside its own unfinished range), so Ctrl-C stays prompt.
            worker.join(timeout=STOP_WAIT)


def _fetch_range(session: requests.Session, url: str, xz_path: Path, bounds: tuple[int, int],
                 events: queue.Queue, stop: threading.Event, opened: requests.Response | None) -> None:
    """Fetch bytes [start, end) into the kept partial at their offset, under the one retry policy: a dropped
    connection continues the range from the byte where it stopped."""
    start, end = bounds
    position = [start]  # advanced by every chunk written, so a retry asks for exactly what is missing
    fd = os.open(xz_path, os.O_WRONLY)
    try:
        for attempt in retry.retrying(progress=lambda: position[0]):
            with attempt:
                first, opened = opened, None
                _read_range(session, url, fd, start, position, end, events, stop, first)
    finally:
        os.close(fd)


def _read_range(session: requests.Session, url: str, fd: int, range_start: int, position: list[int], end: int,
                events: queue.Queue, stop: threading.Event, opened: requests.Response | None) -> None:
    """One request for bytes [position[0], end) of the range starting at `range_start`, written at their
    offsets as they arrive (each chunk is reported with how far the range is now written)."""
    if stop.is_set():
        raise _Stopped
    start = position[0]
    with opened or _get(session, url, headers={"Range": f"bytes={start}-{end - 1}"}, stream=True) as response:
        if response.status_code in (200, 206, 416) and (
                response.status_code != 206 or content_range_start(response.headers.get("Content-Range")) != start):
            raise RangesRefused(f"the server answered a Range request with HTTP {response.status_code}")
        if response.status_code != 206:
            raise DownloadError(f"cannot download {url}: HTTP {response.status_code} {response.reason}")
        try:
            while position[0] < end and (chunk := response.raw.read1(CHUNK_SIZE, decode_content=False)):
                chunk = chunk[:end - position[0]]
                os.pwrite(fd, chunk, position[0])
                position[0] += len(chunk)
                events.put(("bytes", (len(chunk), range_start, position[0])))
                if stop.is_set():
                    raise _Stopped
        except urllib3.exceptions.HTTPError as exc:
            raise ConnectionLost(f"the connection was lost at byte {position[0]}") from exc
    if position[0] < end:
        raise ConnectionLost(f"the connection was closed at byte {position[0]} of a range ending at {end}")


def _verify_and_store(transfer: Transfer, source: ImageSource, expected: str, layout: CacheLayout) -> Path:
    """Move the decompressed image into the cache if the digest matches; otherwise delete every partial byte."""
    digest = transfer.hexdigest()
    if digest != expected:
        transfer.discard(keep_compressed=False)
        raise ChecksumError(f"{source.file_name} does not match its checksum: {source.checksum_url} says "
                            f"{expected}, the download is {digest}; the download was deleted",
                            hint="re-run to download it again; if it fails the same way, the mirror's copy is bad: "
                                 "try another --mirror")
    if decode_error := transfer.finish_decoding():
        transfer.discard(keep_compressed=False)
        raise DownloadError(f"{source.url} matches its checksum but does not decompress: {decode_error}")
    transfer.close()
    try:  # a file that matches its checksum is still only what the mirror says it is: a self-contained qcow2?
        imagefile.inspect(transfer.qcow2_path, "qcow2", bootable=False)
    except imagefile.BadImage as exc:
        transfer.discard(keep_compressed=False)
        raise imagefile.BadImage(source.url, f"matches its checksum but {exc.reason}; it was not cached") from None
    final = layout.image(expected, source.file_name)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(transfer.qcow2_path, final)
    transfer.xz_path.unlink(missing_ok=True)
    if transfer.ranges_path is not None:
        transfer.ranges_path.unlink(missing_ok=True)
    return final


def fetch_base(release: str, arch: str, mirror: str | None = None, *, cache_dir: Path | None = None,
               progress: bool = True, refresh: bool = False, connections: int = DEFAULT_CONNECTIONS) -> FetchedImage:
    """The verified, decompressed official qcow2 for a release and arch, from the cache or the mirror.

    A URL fetched before is answered from the cache without any network request; `refresh` re-reads the
    mirror's `.sha256sum` first (one small request) in case the mirror republished the image. `connections`
    is how many Range requests run at once (1: a single stream).
    """
    source = catalog.image_source(release, arch, mirror)
    layout = CacheLayout(cache_dir or paths.cache_dir())
    if not refresh and (hit := find_cached(layout, source.url)):
        log.info("using cached %s (verified when fetched)", hit.path.name)
        return hit
    with new_session() as session:
        expected = fetch_expected_digest(session, source)
        with _locked(layout.lock(expected)):
            path = find_by_digest(layout, expected, source.file_name)
            from_cache = path is not None
            if path is None:
                path = download(session, source, expected, layout, progress=progress, connections=connections)
            record_in_index(layout, source.url, expected, source.file_name, path.stat().st_size)
    log.info("%s %s (sha256 %s… of the .xz verified)", "using cached" if from_cache else "fetched", path.name,
             expected[:16])
    return FetchedImage(path=path, sha256=expected, url=source.url, from_cache=from_cache)
