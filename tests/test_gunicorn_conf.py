"""The production server (issue 13, row 6): gunicorn started with
web.gunicorn_conf answers ``GET /`` at once while a client hangs on a
half-sent POST body, answers that client 408 when its body stops coming (or
comes too slowly), and serves a complete POST as before. A real gunicorn on
loopback, on a SQLite instance made with the command line; the guard's
limits are lowered so that the test takes seconds."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from web import gunicorn_conf

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
IDLE, TOTAL = 1.0, 3.0
HEAD = (b"POST /proposals/new HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n")


def test_the_configuration_is_threaded_with_its_guard():
    assert gunicorn_conf.worker_class == "gthread" and gunicorn_conf.threads >= 50
    assert gunicorn_conf.timeout > 30 and gunicorn_conf.BODY_IDLE_SECONDS < gunicorn_conf.timeout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(port: int, raw: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """(port, log) of gunicorn -c <the config with the guard's limits lowered> on a new instance."""
    folder = tmp_path_factory.mktemp("gunicorn-conf")
    env = dict(os.environ, KYODO_INSTANCE_PATH=str(folder / "instance"), KYODO_MATCH_MODE="lexical")
    env.pop("KYODO_DATABASE_URL", None)
    subprocess.run([str(BIN / "kyodo"), "db", "upgrade"], env=env, check=True, capture_output=True)
    config = folder / "test_conf.py"
    config.write_text(
        "import web.gunicorn_conf as base\nfrom web.gunicorn_conf import *  # noqa: F403\n"
        f"base.BODY_IDLE_SECONDS, base.BODY_TOTAL_SECONDS = {IDLE}, {TOTAL}\n", encoding="utf-8",
    )
    port = _free_port()
    log = folder / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(config), "--workers", "1", "--bind", f"127.0.0.1:{port}",
             "web:create_app()"],
            env=dict(env, PYTHONPATH=str(ROOT)), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if _request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.3)
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answer_of(conn: socket.socket, wait: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (from now)."""
    started = time.monotonic()
    conn.settimeout(wait)
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer, time.monotonic() - started


def test_get_answers_at_once_while_a_client_hangs_on_its_body_which_gets_408(server):
    port, log = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(HEAD + b"organization=" + b"a" * 87)
        time.sleep(0.3)  # the worker has the request and waits for its body
        started = time.monotonic()
        answer = _request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 1.0
        reply, closed = _answer_of(slow, IDLE + 5)
    # Answered after the idle time, and the connection closed with it (no wait for the rest).
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]
    assert "リクエストの本文が時間内に届きませんでした" in reply.decode("utf-8", errors="replace")
    assert IDLE * 0.5 < closed + 0.3 < IDLE + 1.5, closed
    time.sleep(0.2)
    assert "request body of POST /proposals/new from 127.0.0.1 not received in time: 408" in log.read_text(
        errors="replace")


def test_a_body_that_trickles_in_is_cut_at_the_total_deadline(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(HEAD)
        started = time.monotonic()
        slow.settimeout(IDLE / 2)
        reply = b""
        while time.monotonic() - started < TOTAL + 3:
            try:
                slow.sendall(b"a")  # a byte every half second: never idle for IDLE
                reply = slow.recv(65536)
                break
            except TimeoutError:
                continue
        rest, _ = _answer_of(slow, 3)
    assert (reply + rest).startswith(b"HTTP/1.1 408"), reply[:300]
    assert TOTAL - 0.5 < time.monotonic() - started < TOTAL + 4


def test_a_complete_post_still_goes_through_the_guard(server):
    """The public form submitted whole: its CSRF check reads the body through the guard."""
    port, _ = server
    page = _request(port, b"GET /proposals/new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    cookie = re.search(r"(?im)^set-cookie: (session=[^;]+)", page).group(1)
    body = f"csrf_token={token}&title=".encode()
    answer = _request(port, b"POST /proposals/new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      + f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    # The form came in whole and was validated (its fields are missing): 400 with the form, not 408.
    assert answer.startswith(b"HTTP/1.1 400") and "提案" in answer.decode("utf-8", errors="replace")
