"""gunicorn's configuration for kyodo-match in production, the one way to start it:

    gunicorn -c python:web.gunicorn_conf 'web:create_app()'

behind a buffering reverse proxy (docs/production.md). Any value here can be
overridden on gunicorn's command line (``-b 0.0.0.0:8000``, ``-w 4``) or in
``GUNICORN_CMD_ARGS``; the app's own settings stay KYODO_* (docs/settings.md).

Why these values: gunicorn's default sync worker serves one request per
process and reads a request's body in that request's time, so two clients
that send half a POST body and wait stall two workers until their 30 s
timeout kills them (issue 13, row 6). Threaded workers keep a slow client to
one thread of many, and the guard below gives each body a deadline, so a
thread a slow client holds comes back within seconds, answered 408.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import RequestTimeout

# Loopback: the proxy in front is the only client (docs/production.md).
bind = "127.0.0.1:8000"
# Two processes for the two cores of a small city's server; each keeps its
# own index in memory (about 100 MB with the semantic model loaded).
workers = 2
# gthread: a main loop per process accepts connections and keeps idle ones in
# a poller; a request takes a thread only once its first bytes have arrived.
worker_class = "gthread"
# Threads per process, i.e. requests served at once: enough that 50 clients
# hanging on a half-sent body (benchmarks/bench_slow_clients.py), however
# they fall on the two processes, leave threads for everyone else. An idle
# thread costs no CPU and a few hundred KB.
threads = 64
# With gthread the heartbeat comes from the process's main loop, not from the
# request, so this restarts only a wedged process; a long import in a thread
# is not killed (the sync worker's 30 s killed the zip-bomb upload, row 2).
timeout = 60
# A restart (SIGHUP, deploy) lets requests in progress finish first.
graceful_timeout = 30
# Seconds an idle kept-alive connection stays open: a browser's next page
# load reuses it, a silent one is closed (nginx: keepalive to the upstream).
keepalive = 5
# The guard's limits, read when each worker starts (tests set them lower).
# A request body that sends nothing for BODY_IDLE_SECONDS, or is not complete
# BODY_TOTAL_SECONDS after its request began, is answered 408. Behind the
# buffering proxy a body arrives at loopback speed in milliseconds; without
# it, the total still lets a 20 MB spreadsheet come in over a 2 Mbit/s line.
BODY_IDLE_SECONDS = 10.0
BODY_TOTAL_SECONDS = 120.0

log = logging.getLogger("gunicorn.error")


class _DeadlineInput:
    """A request's ``wsgi.input`` that waits at most ``idle`` seconds for each
    piece of the body (a socket timeout) and never past ``deadline`` (a timer
    that shuts the socket's reading side, which ends a read blocked on a
    trickle), then raises :class:`werkzeug.exceptions.RequestTimeout` (408).
    Either way the reading side is shut: the worker does not wait any
    longer for the rest of the body, and the connection closes after the 408."""

    def __init__(self, stream: Any, sock: socket.socket, deadline: float, idle: float):
        self.stream, self.sock, self.deadline, self.idle = stream, sock, deadline, idle
        self.timed_out = False
        self.timer: threading.Timer | None = None

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        if self.timer is None:  # the first read: the deadline starts to count
            self.timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._expire)
            self.timer.daemon = True
            self.timer.start()
        if self.timed_out:
            raise self._timeout()
        self.sock.settimeout(self.idle)
        try:
            data = method(*args)
        except (TimeoutError, OSError) as exc:
            if not self.timed_out and not isinstance(exc, TimeoutError):
                raise
            self._expire()
            raise self._timeout() from None
        finally:
            # Back to blocking: the response is written with no deadline of ours.
            self.sock.settimeout(None)
        if self.timed_out:  # the timer cut a read short: what it returned is not the body
            raise self._timeout()
        return data

    def _expire(self) -> None:
        self.timed_out = True
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # the client is gone already

    @staticmethod
    def _timeout() -> RequestTimeout:
        return RequestTimeout("リクエストの本文が時間内に届きませんでした。")

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def read(self, size: int | None = -1) -> bytes:
        return self._call(self.stream.read, size)  # type: ignore[no-any-return]

    def readline(self, size: int | None = -1) -> bytes:
        return self._call(self.stream.readline, size)  # type: ignore[no-any-return]

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._call(self.stream.readlines, hint)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BodyDeadline:
    """WSGI middleware: gives each request's body the limits of
    :class:`_DeadlineInput`, only under gunicorn (which hands the socket in
    ``gunicorn.socket``), and logs the requests answered 408."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, idle: float, total: float):
        self.app, self.idle, self.total = app, idle, total

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        has_body = environ.get("CONTENT_LENGTH", "") not in ("", "0") or "chunked" in environ.get(
            "HTTP_TRANSFER_ENCODING", "").lower()
        if sock is None or not has_body:
            return self.app(environ, start_response)
        guarded = _DeadlineInput(environ["wsgi.input"], sock, time.monotonic() + self.total, self.idle)
        environ["wsgi.input"] = guarded
        try:
            return self.app(environ, start_response)
        finally:
            # Flask has read what it reads of the body by the time it returns.
            guarded.cancel()
            if guarded.timed_out:
                log.warning("request body of %s %s from %s not received in time: 408",
                            environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), environ.get("REMOTE_ADDR"))


def post_worker_init(worker: Any) -> None:
    """Wrap the loaded app of each worker in :class:`BodyDeadline`."""
    worker.wsgi = BodyDeadline(worker.wsgi, idle=BODY_IDLE_SECONDS, total=BODY_TOTAL_SECONDS)
