"""An emulated WAN link for the benchmarks: a TCP proxy that delays every connection and caps each one's rate.

Why a proxy and not `ip netns` + `tc`: this machine's kernel has no netem (`tc qdisc add ... netem` answers
"Specified qdisc kind is unknown"; fq, fq_codel, sfq and prio are missing too, only tbf and htb load), so tc
cannot add delay here at all. And a per-connection cap needs per-flow shaping: tbf on a veth caps the whole
link (all connections share it, which is not how a mirror's per-connection limit behaves), and per-flow
htb classes would need a filter per ephemeral port. The proxy does both, per connection, in one place, and
runs in a process of its own so its work never competes for the benchmark's GIL.

The model, per connection and per direction: a chunk read at time t is delivered at
max(t + one-way delay, when the previous chunk finished) + its size / rate. A new connection pays one RTT
before its first byte (TCP's handshake). At most QUEUE_BYTES wait in each direction (a window: the sender
feels backpressure as on a real path).

    with WanLink("http://127.0.0.1:8080/", rtt=0.040, rate=4e6) as link:
        link.url   # the same service, 40 ms and 4 MB/s per connection away

Run directly: `python -m tests.bench.wan LISTEN_PORT_FILE UPSTREAM_HOST UPSTREAM_PORT RTT RATE`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 << 10          # bytes per read: 16 ms of a 4 MB/s link; smaller chunks only cost the proxy CPU
QUEUE_BYTES = 4 << 20     # per direction: far above 4 MB/s x 20 ms, so the window never limits a capped link


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, rate: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=max(1, QUEUE_BYTES // CHUNK))

    async def receive() -> None:
        try:
            while data := await reader.read(CHUNK):
                await queue.put((loop.time() + delay, data))
        except ConnectionError:
            pass
        await queue.put((loop.time() + delay, b""))

    async def deliver() -> None:
        free_at = 0.0
        try:
            while True:
                due, data = await queue.get()
                done = max(due, free_at) + (len(data) / rate if rate else 0.0)
                if (wait := done - loop.time()) > 0:
                    await asyncio.sleep(wait)
                free_at = done
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            return

    await asyncio.gather(receive(), deliver())


async def _serve(port_file: Path, host: str, port: int, rtt: float, rate: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(rtt)  # the handshake's round trip
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_pipe(client_reader, upstream_writer, rtt / 2, rate),
                                 _pipe(upstream_reader, client_writer, rtt / 2, rate))
        finally:
            for each in (client_writer, upstream_writer):
                each.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=CHUNK)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


class WanLink:
    """The proxy in a child process, in front of one HTTP(S) endpoint given by URL."""

    def __init__(self, upstream_url: str, *, rtt: float, rate: float = 0.0) -> None:
        self.upstream = urlsplit(upstream_url)
        self.rtt, self.rate = rtt, rate
        self._process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return urlunsplit(self.upstream._replace(netloc=f"127.0.0.1:{self.port}"))

    def __enter__(self) -> WanLink:
        with tempfile.TemporaryDirectory() as scratch:
            port_file = Path(scratch) / "port"
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.wan", str(port_file), self.upstream.hostname or "127.0.0.1",
                 str(self.upstream.port), str(self.rtt), str(self.rate)], cwd=Path(__file__).parents[2])
            deadline = time.monotonic() + 20
            while not (port_file.exists() and port_file.read_text()):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the WAN proxy did not start")
                time.sleep(0.02)
            self.port = int(port_file.read_text())
        return self

    def cpu_seconds(self) -> float:
        """CPU time the proxy has used so far (it shares the machine with what is measured)."""
        assert self._process is not None
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=10)


def main(argv: list[str]) -> None:
    port_file, host, port, rtt, rate = argv
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(_serve(Path(port_file), host, int(port), float(rtt), float(rate)))


if __name__ == "__main__":
    main(sys.argv[1:])
