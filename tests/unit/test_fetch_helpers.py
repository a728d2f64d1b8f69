"""The pure parts of fetch: reading .sha256sum files and Content-Range headers, streaming xz decoding."""

from __future__ import annotations

import io
import lzma

import pytest

from eulerpub.fetch import XzToFile, content_range_start, content_range_total, parse_checksum

DIGEST = "ab" * 32
NAME = "openEuler-24.03-LTS-x86_64.qcow2.xz"


@pytest.mark.parametrize("text", [
    f"{DIGEST}  {NAME}\n",
    f"{DIGEST} *{NAME}\n",
    f"{DIGEST.upper()}  ./sub/{NAME}\n",
    f"SHA256 ({NAME}) = {DIGEST}\n",
    f"{'cd' * 32}  other.qcow2.xz\n{DIGEST}  {NAME}\n",
])
def test_checksum_formats(text):
    assert parse_checksum(text, NAME) == DIGEST


def test_a_single_digest_is_accepted_under_another_name():
    assert parse_checksum(f"{DIGEST}  renamed.qcow2.xz\n", NAME) == DIGEST


@pytest.mark.parametrize("text", ["", "<html>Not Found</html>", f"{'cd' * 32}  a.xz\n{'ef' * 32}  b.xz\n",
                                  "abc123  " + NAME])
def test_no_usable_digest(text):
    assert parse_checksum(text, NAME) is None


def test_content_range():
    assert content_range_start("bytes 100-199/200") == 100
    assert content_range_total("bytes 100-199/200") == 200
    assert content_range_total("bytes */4096") == 4096
    assert content_range_start(None) is None
    assert content_range_total("bytes 0-1/*") is None


def _decode_in_chunks(data: bytes, chunk: int) -> XzToFile:
    out = io.BytesIO()
    decoder = XzToFile(out)
    for i in range(0, len(data), chunk):
        decoder.feed(data[i:i + chunk])
    decoder.out = out
    return decoder


def test_xz_decodes_in_any_chunking_including_zero_runs_bigger_than_the_output_cap():
    payload = bytes(20 << 20) + b"tail" * 1000  # 20 MiB of zeros compress to almost nothing
    packed = lzma.compress(payload, format=lzma.FORMAT_XZ)
    for chunk in (7, 4096, len(packed)):
        decoder = _decode_in_chunks(packed, chunk)
        assert decoder.complete and decoder.out.getvalue() == payload


def test_a_truncated_stream_is_not_complete():
    packed = lzma.compress(b"payload" * 1000, format=lzma.FORMAT_XZ)
    decoder = _decode_in_chunks(packed[:-12], 100)
    assert decoder.error is None and not decoder.complete


def test_xz_concatenated_streams_and_padding():
    packed = lzma.compress(b"one", format=lzma.FORMAT_XZ) + bytes(4) + lzma.compress(b"two", format=lzma.FORMAT_XZ)
    decoder = _decode_in_chunks(packed, 5)
    assert decoder.complete and decoder.out.getvalue() == b"onetwo"


def test_xz_errors_are_latched_not_raised():
    packed = bytearray(lzma.compress(b"x" * 100000, format=lzma.FORMAT_XZ))
    packed[len(packed) // 2] ^= 0xFF
    decoder = _decode_in_chunks(bytes(packed), 64)
    assert decoder.error and not decoder.complete
