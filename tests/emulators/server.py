"""Plumbing shared by the cloud API emulators.

- `ServerThread`: a stdlib ThreadingHTTPServer on 127.0.0.1, port 0, in a daemon thread, that hands
  each request to a plain function `app(HttpRequest) -> HttpResponse`.
- `Call`: one entry of an emulator's request log (only requests whose signature was verified).
- `Faults`: explicit, countable fault injection (throttle, server error, failed or stuck operation).
- `Progress`: drives an asynchronous operation (an import, a copy) from "started" to "done" by
  counting how often the client looks at it, or by wall time.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit


@dataclass
class HttpRequest:
    method: str
    path: str
    raw_query: str
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> HttpResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


App = Callable[[HttpRequest], HttpResponse]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        request = HttpRequest(self.command, url.path, url.query, self.headers, body)
        try:
            response = self.server.app(request)
        except Exception:  # an emulator bug: make it loud, both to the client and to the test
            self.server.crashes.append(traceback.format_exc())
            response = HttpResponse(500, b"emulator crashed, see emulator.crashes", {"Content-Type": "text/plain"})
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App
    crashes: list[str]


class Emulator:
    """What every emulator shares: start and stop its ServerThreads (`_threads`), and `with emulator:`."""

    def _threads(self) -> Iterable[ServerThread]:
        raise NotImplementedError

    def start(self) -> Self:
        for server in self._threads():
            server.start()
        return self

    def stop(self) -> None:
        for server in self._threads():
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerThread:
    """One listening socket on 127.0.0.1 with a free port, serving `app` from a background thread."""

    def __init__(self, app: App, crashes: list[str]):
        self._app = app
        self._crashes = crashes
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self._app
        self._httpd.crashes = self._crashes
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="emulator-http",
                                        daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        """host:port, as the Tencent SDK wants its endpoint."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join()
        self._httpd = self._thread = None


@dataclass
class Call:
    """A request that passed signature verification; `error` is the error code returned, or None."""

    region: str
    action: str
    body: Any
    query: dict[str, str] = field(default_factory=dict)
    error: str | None = None


THROTTLE = "throttle"
SERVER_ERROR = "server_error"
FAIL = "fail"
STUCK = "stuck"
FAULT_KINDS = (THROTTLE, SERVER_ERROR, FAIL, STUCK)


@dataclass
class Fault:
    """`throttle`/`server_error` hit the next matching requests; `fail`/`stuck` hit the next matching
    asynchronous operations when they are created. `times=None` keeps the fault forever."""

    kind: str
    action: str | None = None
    region: str | None = None
    times: int | None = 1
    reason: str = ""

    def matches(self, kinds: tuple[str, ...], action: str, region: str) -> bool:
        return (self.kind in kinds and self.times != 0 and self.action in (None, action)
                and self.region in (None, region))


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, action: str | None = None, region: str | None = None,
            times: int | None = 1, reason: str = "") -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        fault = Fault(kind, action, region, times, reason or f"injected {kind}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kinds: tuple[str, ...], action: str, region: str) -> Fault | None:
        """Consume one use of the first fault of one of `kinds` that matches, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(kinds, action, region):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass
class Timing:
    """How long asynchronous operations take: `polls` looks by the client, or `seconds` of wall time,
    whichever comes first (None disables that criterion)."""

    polls: int | None = 3
    seconds: float | None = None


class Progress:
    def __init__(self, timing: Timing, fault: Fault | None):
        self._timing = timing
        self._started = time.monotonic()
        self._forced = False
        self.looks = 0
        self.stuck = fault is not None and fault.kind == STUCK
        self.fail_reason = fault.reason if fault is not None and fault.kind == FAIL else None

    def look(self) -> None:
        self.looks += 1

    def finish(self) -> None:
        self._forced = True

    @property
    def done(self) -> bool:
        if self.stuck:
            return False
        polls, seconds = self._timing.polls, self._timing.seconds
        return (self._forced or (polls is not None and self.looks >= polls)
                or (seconds is not None and time.monotonic() - self._started >= seconds))


def new_request_id() -> str:
    return str(uuid.uuid4())


def utc_iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
