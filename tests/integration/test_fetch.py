"""`eulerpub fetch` against a local mirror in openEuler's layout: verification, resume, cache, and errors."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eulerpub import fetch, paths, retry
from eulerpub.errors import ChecksumError
from eulerpub.fetch import CacheLayout, DownloadError, fetch_base
from tests.mirror import MirrorServer

pytestmark = pytest.mark.integration

XZ = "*.qcow2.xz"
RELEASE, ARCH = "24.03-LTS-SP1", "x86_64"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """The retry policy's timing is not under test here; its decisions are."""
    monkeypatch.setattr(retry, "BACKOFF_START", 0.001)


def image_gets(mirror: MirrorServer):
    return [r for r in mirror.requests if r.method == "GET" and r.path.endswith(".qcow2.xz")]


def cache_files() -> list[str]:
    root = paths.cache_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def assert_same_bytes(a: Path, b: Path) -> None:
    assert a.stat().st_size == b.stat().st_size
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_good_fetch_verifies_decompresses_and_caches_by_digest(published_image):
    image = fetch_base(RELEASE, ARCH)
    digest = published_image.published.sha256
    assert image.sha256 == digest and not image.from_cache
    assert image.path == paths.cache_dir() / "images" / digest / "openEuler-24.03-LTS-SP1-x86_64.qcow2"
    assert_same_bytes(image.path, published_image.source)
    assert cache_files() == ["images/" + digest + "/openEuler-24.03-LTS-SP1-x86_64.qcow2", "index.json"]
    size = published_image.published.xz_path.stat().st_size
    # the file is smaller than one range: one Range request for the first range brings all of it
    assert [(r.range, r.status, r.bytes_sent) for r in image_gets(published_image.mirror)] == \
        [(f"bytes=0-{fetch.RANGE_SIZE - 1}", 206, size)]


def test_a_single_stream_fetch_asks_for_the_whole_file(published_image):
    image = fetch_base(RELEASE, ARCH, connections=1)
    assert [r.range for r in image_gets(published_image.mirror)] == [None]
    assert_same_bytes(image.path, published_image.source)


def test_a_dropped_connection_resumes_with_a_range_request(published_image):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.drop_at(XZ, size // 2, times=1)
    image = fetch_base(RELEASE, ARCH, connections=1)
    first, second = image_gets(mirror)
    assert first.range is None and first.bytes_sent == size // 2
    assert second.range == f"bytes={size // 2}-" and second.status == 206
    assert second.bytes_sent == size - size // 2 < size
    assert_same_bytes(image.path, published_image.source)
    assert image.sha256 == published_image.published.sha256


def test_a_later_run_resumes_what_a_failed_run_kept(published_image):
    """The decoder restarts over the kept compressed bytes, then continues from the network."""
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.drop_at(XZ, size // 3, times=None)
    with pytest.raises(DownloadError, match=f"the connection was lost at byte {size // 3} of {size}"):
        fetch_base(RELEASE, ARCH, connections=1)
    layout = CacheLayout(paths.cache_dir())
    assert layout.partial_xz(published_image.published.sha256).stat().st_size == size // 3
    assert not (paths.cache_dir() / "images").exists()

    mirror.faults.clear()
    mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, connections=1)
    assert [(r.range, r.bytes_sent) for r in image_gets(mirror)] == [(f"bytes={size // 3}-", size - size // 3)]
    assert_same_bytes(image.path, published_image.source)
    assert not layout.partial_xz(published_image.published.sha256).exists()


def test_a_server_that_ignores_range_is_downloaded_from_the_start(published_image):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.drop_at(XZ, size // 2, times=1)
    mirror.faults.ignore_range(XZ)
    image = fetch_base(RELEASE, ARCH, connections=1)
    second = image_gets(mirror)[1]
    assert second.range == f"bytes={size // 2}-" and second.status == 200 and second.bytes_sent == size
    assert_same_bytes(image.path, published_image.source)


def test_transient_server_errors_are_retried(published_image):
    mirror = published_image.mirror
    mirror.faults.fail("*.sha256sum", 503, times=2)
    mirror.faults.fail(XZ, 503, times=3)
    image = fetch_base(RELEASE, ARCH)
    assert [r.status for r in mirror.requests] == [503, 503, 200, 503, 503, 503, 206]
    assert_same_bytes(image.path, published_image.source)


def test_a_corrupt_image_is_refused_and_the_cache_stays_clean(published_image, cli):
    published_image.mirror.faults.corrupt(XZ)
    xz = bytearray(published_image.published.xz_path.read_bytes())
    xz[len(xz) // 2] ^= 0xFF
    corrupt_digest = hashlib.sha256(xz).hexdigest()

    result = cli("fetch", "--release", RELEASE, "--arch", ARCH)

    assert result.exit_code == 1
    assert published_image.published.sha256 in result.stderr and corrupt_digest in result.stderr
    assert "does not match its checksum" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert cache_files() == []


def test_a_corrupt_download_is_a_checksum_error_in_the_library(published_image):
    published_image.mirror.faults.corrupt(XZ)
    with pytest.raises(ChecksumError):
        fetch_base(RELEASE, ARCH)


def test_a_missing_checksum_file_is_one_clear_error(published_image, cli):
    published_image.published.checksum_path.unlink()
    result = cli("fetch", "--release", RELEASE, "--arch", ARCH)
    assert result.exit_code == 1
    assert "sha256sum is missing (HTTP 404): the mirror has the image but not its checksum" in result.stderr
    assert "Traceback" not in result.stderr
    assert image_gets(published_image.mirror) == []  # nothing unverifiable was downloaded
    assert cache_files() == []


def test_a_release_the_mirror_does_not_carry_is_a_404(published_image, cli):
    result = cli("fetch", "--release", "25.09", "--arch", "aarch64")
    assert result.exit_code == 1
    assert "the mirror has no openEuler 25.09 aarch64 image" in result.stderr
    assert "openEuler-25.09-aarch64.qcow2.xz returned HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_fetch_makes_no_http_request(published_image, cli):
    first = cli("fetch", "--release", RELEASE, "--arch", ARCH)
    assert first.exit_code == 0
    mirror = published_image.mirror
    mirror.clear_log()

    second = cli("fetch", "--release", RELEASE, "--arch", ARCH, "--json")

    assert second.exit_code == 0, second.stderr
    assert mirror.requests == []
    data = json.loads(second.stdout)
    assert data["path"] == first.stdout.strip()
    assert data["from_cache"] is True and data["sha256"] == published_image.published.sha256
    assert (data["release"], data["arch"]) == (RELEASE, ARCH)


def test_a_damaged_cache_entry_is_fetched_again(published_image):
    first = fetch_base(RELEASE, ARCH)
    with open(first.path, "ab") as damaged:
        damaged.write(b"x")
    again = fetch_base(RELEASE, ARCH)
    assert not again.from_cache
    assert_same_bytes(again.path, published_image.source)


def test_another_mirror_with_the_same_image_costs_only_the_checksum(published_image):
    fetch_base(RELEASE, ARCH)
    with MirrorServer(published_image.mirror.root) as other:
        image = fetch_base(RELEASE, ARCH, other.url)
        assert image.from_cache and image.url.startswith(other.url)
        assert [r.path.rsplit(".", 1)[1] for r in other.requests] == ["sha256sum"]


def test_refresh_rereads_the_checksum_only(published_image):
    fetch_base(RELEASE, ARCH)
    published_image.mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, refresh=True)
    assert image.from_cache
    assert [r.path.endswith(".sha256sum") for r in published_image.mirror.requests] == [True]


@pytest.mark.parametrize(("args", "expected"), [
    (["--release", "23.09", "--arch", "x86_64"], "error: unknown openEuler release '23.09'; known releases: "),
    (["--release", RELEASE, "--arch", "sparc"], "error: Invalid value for '--arch' / '-a': "
     "'sparc' is not one of 'x86_64', "),
    (["--release", RELEASE, "--arch", "riscv64"], "error: openEuler 24.03-LTS-SP1 has no riscv64 image"),
    (["--arch", "x86_64"], "error: --release is required; known releases: "),
    (["-r", RELEASE, "--mirror", "repo.openeuler.org"], "error: mirror 'repo.openeuler.org' is not an http(s) URL"),
])
def test_bad_input_is_one_sentence_and_exit_2(cli, mirror_env, args, expected):
    result = cli("fetch", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1
    assert mirror_env.requests == []


def test_catalog_json_lists_the_images_below_the_mirror(cli):
    result = cli("catalog", "list", "--mirror", "http://mirror.example/oe", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["mirror"] == "http://mirror.example/oe/"
    riscv = [i for i in data["images"] if i["arch"] == "riscv64"]
    assert riscv == [{
        "release": "24.03-LTS-SP4", "arch": "riscv64", "kind": "lts-sp",
        "file_name": "openEuler-24.03-LTS-SP4-riscv64-rva23.qcow2.xz",
        "url": "http://mirror.example/oe/openEuler-24.03-LTS-SP4/virtual_machine_img/riscv64/rva23/"
               "openEuler-24.03-LTS-SP4-riscv64-rva23.qcow2.xz",
        "checksum_url": "http://mirror.example/oe/openEuler-24.03-LTS-SP4/virtual_machine_img/riscv64/rva23/"
                        "openEuler-24.03-LTS-SP4-riscv64-rva23.qcow2.xz.sha256sum"}]
    assert len({(i["release"], i["arch"]) for i in data["images"]}) == len(data["images"]) == 27


def test_catalog_table_honours_the_mirror_environment(cli, monkeypatch):
    monkeypatch.setenv("EULERPUB_MIRROR", "https://env.example/")
    result = cli("catalog", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RELEASE", "ARCH", "URL"]
    assert "https://env.example/openEuler-20.03-LTS/virtual_machine_img/aarch64/openEuler-20.03-LTS.aarch64.qcow2.xz" \
        in result.stdout
    assert len(lines) == 28


def test_concurrent_fetches_of_one_image_download_it_once(published_image):
    with ThreadPoolExecutor(max_workers=2) as pool:
        images = list(pool.map(lambda _: fetch_base(RELEASE, ARCH), range(2)))
    assert len(image_gets(published_image.mirror)) == 1
    assert images[0].path == images[1].path and sorted(i.from_cache for i in images) == [False, True]
    assert_same_bytes(images[0].path, published_image.source)


# ---------------------------------------------------------------------------------------------------------
# Parallel ranges. The small image is cut into ranges of SMALL_RANGE bytes, fetched over several connections.

SMALL_RANGE = 128 << 10


@pytest.fixture
def small_ranges(monkeypatch) -> int:
    monkeypatch.setattr(fetch, "RANGE_SIZE", SMALL_RANGE)
    return SMALL_RANGE


def served_ranges(mirror: MirrorServer) -> list[tuple[int, int]]:
    """The (first, last) byte of every Range the mirror answered with 206, in file order."""
    spans = []
    for request in image_gets(mirror):
        assert request.status == 206, request
        first = request.range.removeprefix("bytes=").split("-")[0]
        spans.append((int(first), int(first) + request.bytes_sent - 1))
    return sorted(spans)


def test_a_parallel_fetch_reads_every_range_once_and_verifies_the_whole_file(published_image, small_ranges):
    size = published_image.published.xz_path.stat().st_size
    assert size > 4 * small_ranges  # enough ranges to keep every connection busy
    image = fetch_base(RELEASE, ARCH, connections=4)
    assert image.sha256 == published_image.published.sha256
    assert_same_bytes(image.path, published_image.source)
    expected = [(start, min(start + small_ranges, size) - 1) for start in range(0, size, small_ranges)]
    assert served_ranges(published_image.mirror) == expected  # each byte served exactly once
    assert published_image.mirror.bytes_sent(XZ) == size
    assert cache_files() == ["images/" + image.sha256 + "/openEuler-24.03-LTS-SP1-x86_64.qcow2", "index.json"]


def test_a_connection_dropped_mid_range_continues_that_range_where_it_stopped(published_image, small_ranges):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    cut = 2 * small_ranges + small_ranges // 3
    mirror.faults.drop_at(XZ, cut, times=1)
    image = fetch_base(RELEASE, ARCH, connections=3)
    assert_same_bytes(image.path, published_image.source)
    assert f"bytes={cut}-{3 * small_ranges - 1}" in [r.range for r in image_gets(mirror)]
    assert mirror.bytes_sent(XZ) == size


def test_a_server_that_ignores_range_is_read_as_one_stream(published_image, small_ranges):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.ignore_range(XZ)
    image = fetch_base(RELEASE, ARCH, connections=4)
    assert_same_bytes(image.path, published_image.source)
    # the answer to the first Range request is the whole file, and it is used: one request, no second download
    assert [(r.range, r.status, r.bytes_sent) for r in image_gets(mirror)] == \
        [(f"bytes=0-{small_ranges - 1}", 200, size)]
    assert cache_files() == ["images/" + image.sha256 + "/openEuler-24.03-LTS-SP1-x86_64.qcow2", "index.json"]


def test_a_corrupt_parallel_download_leaves_the_cache_clean(published_image, small_ranges):
    published_image.mirror.faults.corrupt(XZ)
    with pytest.raises(ChecksumError, match="does not match its checksum"):
        fetch_base(RELEASE, ARCH, connections=4)
    assert cache_files() == []  # no partial, no range map, no image


_KILLED_FETCH = """
import sys
from pathlib import Path
from eulerpub import fetch
fetch.RANGE_SIZE = int(sys.argv[1])
fetch.fetch_base(sys.argv[2], sys.argv[3], sys.argv[4], cache_dir=Path(sys.argv[5]), progress=False, connections=3)
"""


def test_a_fetch_killed_mid_range_fetches_only_the_missing_ranges_when_run_again(published_image, small_ranges,
                                                                                  tmp_path):
    """SIGKILL while one connection is stuck inside range 2 and the others have finished every other range:
    the re-run asks for range 2 alone, and the mirror serves exactly that many bytes."""
    import signal
    import subprocess
    import sys
    import time

    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    layout = CacheLayout(paths.cache_dir())
    ranges = layout.partial_ranges(published_image.published.sha256)
    count = -(-size // small_ranges)
    stuck = 2
    mirror.faults.stall_at(XZ, stuck * small_ranges + small_ranges // 2, times=1)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_FETCH, str(small_ranges), RELEASE, ARCH, mirror.url,
                              str(paths.cache_dir())])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = set(json.loads(ranges.read_text())["done"]) if ranges.exists() else set()
            if done == set(range(count)) - {stuck}:
                break
            assert child.poll() is None, "the fetch ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail(f"the other ranges never completed: {done}")
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        mirror.faults.release()
    assert not (paths.cache_dir() / "images").exists()

    mirror.faults.clear()
    time.sleep(0.2)  # the stalled request logs itself when released
    mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, connections=3)
    assert served_ranges(mirror) == [(stuck * small_ranges, (stuck + 1) * small_ranges - 1)]
    assert mirror.bytes_sent(XZ) == small_ranges
    assert_same_bytes(image.path, published_image.source)
    assert not ranges.exists() and not layout.partial_xz(published_image.published.sha256).exists()


@pytest.mark.parametrize(("connections", "first_range"), [("1", None), ("3", f"bytes=0-{fetch.RANGE_SIZE - 1}")])
def test_the_connections_option_reaches_the_download(published_image, cli, connections, first_range):
    result = cli("fetch", "--release", RELEASE, "--arch", ARCH, "--connections", connections)
    assert result.exit_code == 0, result.stderr
    assert [r.range for r in image_gets(published_image.mirror)] == [first_range]
    assert_same_bytes(Path(result.stdout.strip()), published_image.source)


def test_a_server_that_never_tells_the_size_is_read_as_one_stream(published_image, small_ranges):
    """A 206 with an unknown total (`bytes 0-N/*`) gives no ranges to plan: one plain GET follows, whose 200
    has no Content-Length either; the digest still decides."""
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.hide_size(XZ)
    image = fetch_base(RELEASE, ARCH, connections=4)
    assert_same_bytes(image.path, published_image.source)
    gets = image_gets(mirror)
    assert [(r.status, r.bytes_sent) for r in gets if r.range is None] == [(200, size)]
    # the probe (logged only if its body was out before the client hung up on it) was the only Range request
    assert all((r.range, r.status) == (f"bytes=0-{small_ranges - 1}", 206) for r in gets if r.range is not None)


def test_a_range_that_keeps_failing_fails_the_fetch_and_keeps_the_others_for_the_next_run(published_image,
                                                                                          small_ranges):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    layout = CacheLayout(paths.cache_dir())
    cut = 3 * small_ranges + 1000
    mirror.faults.drop_at(XZ, cut, times=None)  # the mirror never gets past this byte
    with pytest.raises(DownloadError, match=f"the connection was lost at byte {cut}$"):
        fetch_base(RELEASE, ARCH, connections=3)
    kept = json.loads(layout.partial_ranges(published_image.published.sha256).read_text())
    assert kept["done"] == [i for i in range(-(-size // small_ranges)) if i != 3]
    assert not (paths.cache_dir() / "images").exists()

    mirror.faults.clear()
    mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, connections=3)
    assert served_ranges(mirror) == [(3 * small_ranges, 4 * small_ranges - 1)]
    assert_same_bytes(image.path, published_image.source)


def test_a_ranged_partial_is_finished_as_one_stream_when_the_server_stops_honouring_range(published_image,
                                                                                         small_ranges):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    layout = CacheLayout(paths.cache_dir())
    mirror.faults.drop_at(XZ, 3 * small_ranges + 1000, times=None)
    with pytest.raises(DownloadError):
        fetch_base(RELEASE, ARCH, connections=3)
    assert layout.partial_ranges(published_image.published.sha256).exists()

    mirror.faults.clear()
    mirror.faults.ignore_range(XZ)  # e.g. the mirror moved behind a proxy that drops Range
    mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, connections=3)
    # the 200 to the first missing range's request is the whole file, read as the one stream: nothing else
    assert [(r.range, r.status, r.bytes_sent) for r in image_gets(mirror)] == \
        [(f"bytes={3 * small_ranges}-{4 * small_ranges - 1}", 200, size)]
    assert_same_bytes(image.path, published_image.source)
    assert cache_files() == ["images/" + image.sha256 + "/openEuler-24.03-LTS-SP1-x86_64.qcow2", "index.json"]


def test_a_server_that_stops_honouring_range_mid_download_is_finished_as_one_stream(published_image,
                                                                                   small_ranges):
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    mirror.faults.ignore_range(XZ, after=3)  # the probe and two more ranges, then 200s with the whole file
    image = fetch_base(RELEASE, ARCH, connections=2)
    assert_same_bytes(image.path, published_image.source)
    last = image_gets(mirror)[-1]
    assert (last.status, last.bytes_sent) == (200, size) and last.range is not None  # the one stream's request
    assert cache_files() == ["images/" + image.sha256 + "/openEuler-24.03-LTS-SP1-x86_64.qcow2", "index.json"]


@pytest.mark.parametrize("damage", ["{not json", '{"version": 1, "total": 5, "range_size": 1, "done": [0, 99]}'])
def test_a_damaged_range_map_starts_the_download_over(published_image, small_ranges, damage):
    """The map is what tells data from holes in the sparse partial: without it nothing kept is trusted."""
    mirror = published_image.mirror
    size = published_image.published.xz_path.stat().st_size
    layout = CacheLayout(paths.cache_dir())
    mirror.faults.drop_at(XZ, 3 * small_ranges + 1000, times=None)
    with pytest.raises(DownloadError):
        fetch_base(RELEASE, ARCH, connections=3)
    layout.partial_ranges(published_image.published.sha256).write_text(damage)

    mirror.faults.clear()
    mirror.clear_log()
    image = fetch_base(RELEASE, ARCH, connections=3)
    assert_same_bytes(image.path, published_image.source)
    assert mirror.bytes_sent(XZ) == size  # everything again, each byte once
    assert served_ranges(mirror)[0] == (0, small_ranges - 1)


def test_a_partial_of_a_file_that_changed_size_on_the_mirror_is_not_trusted(published_image, small_ranges):
    """A mirror half-way through a sync: the .sha256sum still names the old file, the .xz is a new one."""
    mirror = published_image.mirror
    xz = published_image.published.xz_path
    mirror.faults.drop_at(XZ, 3 * small_ranges + 1000, times=None)
    with pytest.raises(DownloadError):
        fetch_base(RELEASE, ARCH, connections=3)
    xz.write_bytes(xz.read_bytes() + b"\0" * small_ranges)  # another size (padding: still one valid xz file)

    mirror.faults.clear()
    mirror.clear_log()
    with pytest.raises(ChecksumError):
        fetch_base(RELEASE, ARCH, connections=3)
    probe, *rest = image_gets(mirror)
    assert probe.range == f"bytes={3 * small_ranges}-{4 * small_ranges - 1}"  # the kept map's first missing range
    assert sum(r.bytes_sent for r in rest) == xz.stat().st_size  # then the whole new file: nothing old reused
    assert all(r.status == 206 for r in rest)  # still in ranges, over several connections
    assert cache_files() == []
