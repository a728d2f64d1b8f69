"""Where a WAN fetch's time goes: a timeline of one `fetch_base` through the emulated link.

    .venv/bin/python -m tests.bench.trace_fetch [CONNECTIONS [RANGE_KIB]]

Publishes the WAN bench's image (160 MiB qcow2, its .xz about 67 MiB) on a local mirror behind a 40 ms RTT,
4 MB/s-per-connection link (tests/bench/wan.py), then fetches it in a child process that wraps fetch's
internals to stamp each range's start and end, every 8 MiB of the hashed prefix and of the decoder's input,
the wait for the decoder, the close (fsync) and the inspection; and prints the timeline, the CPU of the
whole fetch and of the decoder thread, and how many TCP connections were opened. docs/benchmarks.md's
fetch row was explained with it. A diagnostic, not a test: it asserts only that the image came out right.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20
STEP = 8 * MiB

_CHILD = """
import sys, threading, time
import urllib3.util.connection as connection
from eulerpub import fetch, imagefile
T0, events, seen = time.perf_counter(), [], {"decoded": 0, "prefix": 0}
mark = lambda what: events.append((time.perf_counter() - T0, threading.current_thread().name, what))
connections, range_kib = int(sys.argv[1]), int(sys.argv[2])
if range_kib:
    fetch.RANGE_SIZE = range_kib << 10
opened = [0]
create = connection.create_connection
def counted(*a, **k):
    opened[0] += 1
    return create(*a, **k)
connection.create_connection = counted
def stepper(name, inner):
    def wrapped(self, data):
        inner(self, data)
        before, seen[name] = seen[name], seen[name] + len(data)
        if before // STEP != seen[name] // STEP:
            mark(f"{name} {seen[name] >> 20} MiB")
    return wrapped
fetch.XzToFile.feed = stepper("decoded", fetch.XzToFile.feed)
fetch.Transfer._consume = stepper("prefix", fetch.Transfer._consume)
fetch_range = fetch._fetch_range
def traced_range(session, url, path, bounds, *rest):
    mark(f"range {bounds[0] >> 20}-{bounds[1] >> 20} MiB start")
    fetch_range(session, url, path, bounds, *rest)
    mark(f"range {bounds[0] >> 20}-{bounds[1] >> 20} MiB done")
fetch._fetch_range = traced_range
def around(owner, name):
    inner = getattr(owner, name)
    def wrapped(*a, **k):
        mark(f"{name} begin")
        try:
            return inner(*a, **k)
        finally:
            mark(f"{name} end")
    setattr(owner, name, wrapped)
around(fetch.Transfer, "finish_decoding")
around(fetch.Transfer, "close")
around(imagefile, "inspect")
work = fetch.BackgroundXz._work
decoder_cpu = [0.0]
def timed_work(self):
    work(self)
    decoder_cpu[0] = time.thread_time()
fetch.BackgroundXz._work = timed_work
cpu = time.process_time()
image = fetch.fetch_base("24.03-LTS-SP1", "x86_64", progress=False, connections=connections)
mark("end")
for at, thread, what in events:
    print(f"{at:6.2f} s  {thread:18s} {what}")
print(f"CPU {time.process_time() - cpu:.2f} s (decoder thread {decoder_cpu[0]:.2f} s), {opened[0]} TCP "
      f"connections, {fetch.RANGE_SIZE >> 10} KiB ranges; {image.path}")
""".replace("STEP", str(STEP))


def main(argv: list[str]) -> None:
    from eulerpub.manifest import sha256_file
    from tests.bench.bench_wan import FETCH_MIB, MIRROR_RATE, RELEASE, RTT
    from tests.bench.wan import WanLink
    from tests.mirror import MirrorServer, make_qcow2_like, publish_image

    connections, range_kib = [*argv, "4", "0"][:2] if argv else ("4", "0")  # 0: fetch's own range size
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = make_qcow2_like(root / "image.qcow2", FETCH_MIB * MiB, seed=3)
        publish_image(root / "mirror", RELEASE, "x86_64", source)
        with MirrorServer(root / "mirror") as mirror, WanLink(mirror.url, rtt=RTT, rate=MIRROR_RATE) as link:
            env = {**os.environ, "EULERPUB_MIRROR": link.url, "EULERPUB_CACHE_DIR": str(root / "cache")}
            print(f"load average {os.getloadavg()[0]:.1f}")
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _CHILD, connections, range_kib], env=env, check=True,
                                 capture_output=True, text=True, cwd=Path(__file__).parents[2]).stdout
            wall = time.perf_counter() - start
        print(out, end="")
        path = Path(out.rsplit("; ", 1)[1].strip())
        assert sha256_file(path) == sha256_file(source), "the fetched image is not the published one"
        print(f"child process {wall:.2f} s wall (its start and exit included); load average "
              f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
