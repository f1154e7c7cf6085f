"""Does ``GET /`` still answer while clients hang on half-sent requests?

    .venv/bin/python benchmarks/bench_slow_clients.py [--slow 50] [--gets 20] [--small]

Creates a SQLite instance in a temporary folder with the command line, as
the README does (``kyodo db upgrade``; the rate limit's counts in Redis at
127.0.0.1:6379, as two workers need), and serves it with gunicorn on
127.0.0.1 at a free port, two ways in the same run:

* before: the README's old command, ``gunicorn -w 2 'web:create_app()'``
  (two sync workers);
* after: ``gunicorn -c python:web.gunicorn_conf 'web:create_app()'``.

For each it opens ``--slow`` connections that send the headers of a
``POST /proposals/new`` and the first 100 of its 10,000 body bytes and then
hang (the body the CSRF check reads), waits a second, then times ``--gets``
requests of ``GET /`` one after the other, each on a new connection (a GET
not answered within ``--wait`` seconds counts as not answered). Then it does
the same with connections that hang in the middle of their headers, and
counts how many of the hanging POSTs were answered 408 within the guard's
BODY_IDLE_SECONDS + 3 s (web/gunicorn_conf.py). Prints a Markdown table; exits 1 when the
configured server's slowest GET took 1 s or more (the bar of issue 13, row 6).

``--nginx``: a third way, the same gunicorn behind nginx run with the site of
docs/production.md (read from that file; only its ports changed, without TLS).

For the old command: 2 hanging bodies (the issue's case) and ``--slow``, one GET
each. ``--small`` (CI): 5 GETs per case and a 3 s wait for the old command.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
APP = "web:create_app()"
REDIS = "redis://127.0.0.1:6379/3"
AFTER = "after: gunicorn -c python:web.gunicorn_conf"
NGINX_NAME = "nginx (docs/production.md) → " + AFTER.removeprefix("after: ")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVERS = {
    "before: gunicorn -w 2 (sync)": ["--workers", "2"],
    AFTER: ["-c", "python:web.gunicorn_conf"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_instance(folder: Path) -> dict[str, str]:
    """A new SQLite instance (database and secret key) made by ``kyodo db upgrade``;
    two workers share the submission counts in Redis, as docs/production.md asks."""
    env = dict(os.environ, KYODO_INSTANCE_PATH=str(folder / "instance"), KYODO_MATCH_MODE="lexical",
               KYODO_RATELIMIT_STORAGE_URI=REDIS)
    env.pop("KYODO_DATABASE_URL", None)
    subprocess.run([str(BIN / "kyodo"), "db", "upgrade"], env=env, check=True, capture_output=True, cwd=folder)
    return env


def start(args: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), *args, "--bind", f"127.0.0.1:{port}", APP],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}; see {log}")
        if get_root(port, 2.0) is not None:
            for _ in range(6):  # both workers warm: templates and the database opened
                get_root(port, 10.0)
            return server
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("gunicorn did not answer within 60 s")


def get_root(port: int, wait: float) -> float | None:
    """Seconds until ``GET /`` was answered completely, None if not within ``wait``."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = b""
            while chunk := conn.recv(65536):
                head += chunk
                if time.monotonic() - started > wait:
                    return None
    except OSError:
        return None
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    return time.monotonic() - started


def hang(port: int, count: int, *, in_headers: bool) -> list[socket.socket]:
    """``count`` connections that send part of a request and then wait."""
    head = (b"POST /proposals/new HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n")
    part = head[:40] if in_headers else head + b"organization=" + b"a" * 87
    sockets = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(part)
        sockets.append(conn)
    return sockets


def answered_408(sockets: list[socket.socket], within: float) -> int:
    """How many of the hanging connections got a 408 within ``within`` seconds."""
    deadline = time.monotonic() + within
    count = 0
    for conn in sockets:
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if conn.recv(64).startswith(b"HTTP/1.1 408"):
                count += 1
        except OSError:
            pass
    return count


@dataclass
class Case:
    server: str
    hanging: str
    times: list[float | None] = field(default_factory=list)
    got_408: int | None = None

    def row(self, wait: float) -> str:
        done = [t for t in self.times if t is not None]
        missing = len(self.times) - len(done)
        if not done:
            figures = f"none within {wait:g} s | – | –"
        else:
            figures = f"{statistics.median(done) * 1000:.0f} ms | {max(done) * 1000:.0f} ms | {missing}"
            if missing:
                figures = f"{statistics.median(done) * 1000:.0f} ms (answered ones) | {max(done) * 1000:.0f} ms | {missing}"
        answered = "–" if self.got_408 is None else str(self.got_408)
        return f"| {self.server} | {self.hanging} | {len(self.times)} | {figures} | {answered} |"


NGINX_BLOCK = re.compile(r"```nginx\n(.*?)```", re.S)


def nginx_site(gunicorn_port: int, port: int) -> str:
    """The nginx site of docs/production.md, word for word but for the ports,
    without TLS (no certificate here) and without its port-80 redirect."""
    site = NGINX_BLOCK.search((ROOT / "docs" / "production.md").read_text(encoding="utf-8")).group(1)  # type: ignore[union-attr]
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn_port};")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
    site = re.sub(r"^\s*ssl_certificate.*$", "", site, flags=re.M)
    return re.sub(r"server \{[^{}]*listen 80;[^{}]*\}", "", site)


def start_nginx(gunicorn_port: int, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    prefix = folder / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off;\nuser root;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "worker_processes 1;\nevents { worker_connections 4096; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n proxy_temp_path {prefix}/proxy;\n"
        f"{nginx_site(gunicorn_port, port)}}}\n", encoding="utf-8")
    server = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix)], stderr=subprocess.STDOUT,
                              stdout=(prefix / "out.log").open("wb"))
    deadline = time.monotonic() + 10
    while get_root(port, 2.0) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not start: {(prefix / 'out.log').read_text()}")
        time.sleep(0.2)
    return server, port


def run_server(name: str, args: list[str], env: dict[str, str], folder: Path, opts: argparse.Namespace) -> list[Case]:
    """The cases of one server: nothing hanging, then each kind of hanging connections."""
    from web import gunicorn_conf

    is_new = "gunicorn_conf" in " ".join(args)
    proxied = name.startswith("nginx")
    wait = opts.wait if is_new else opts.old_wait
    # The old server: 2 (the case) and --slow hanging bodies, one GET
    # each (its workers are being killed and restarted meanwhile).
    kinds = [(opts.slow, False), (opts.slow, True)] if is_new else [(2, False), (opts.slow, False)]
    port = free_port()
    processes = [start(args, port, env, folder / "gunicorn.log")]
    try:
        if proxied:
            front, port = start_nginx(port, folder)
            processes.append(front)
        cases = [Case(name, "none", [get_root(port, wait) for _ in range(opts.gets)])]
        for count, in_headers in kinds:
            case = Case(name, f"{count} in the {'headers' if in_headers else 'POST body'}")
            sockets = hang(port, count, in_headers=in_headers)
            time.sleep(1.0)  # every connection accepted and in a worker
            case.times = [get_root(port, wait) for _ in range(opts.gets if is_new else 1)]
            if is_new and not in_headers and not proxied:
                case.got_408 = answered_408(sockets, gunicorn_conf.BODY_IDLE_SECONDS + 3)
            for conn in sockets:
                conn.close()
            cases.append(case)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=50, help="hanging connections")
    parser.add_argument("--gets", type=int, default=20, help="GET / timed per case")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds a GET may take (configured server)")
    parser.add_argument("--old-wait", type=float, default=40.0, help="seconds a GET may take (old command)")
    parser.add_argument("--small", action="store_true", help="CI: 5 GETs, 3 s for the old command")
    parser.add_argument("--nginx", action="store_true", help="also behind nginx, with docs/production.md's site")
    opts = parser.parse_args()
    if opts.small:
        opts.gets, opts.old_wait = 5, 3.0
    sys.path.insert(0, str(ROOT))
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="kyodo-slow-") as tmp:
        folder = Path(tmp)
        env = make_instance(folder)
        servers = {**SERVERS, **({NGINX_NAME: SERVERS[AFTER]} if opts.nginx else {})}
        for name, args in servers.items():
            cases += run_server(name, args, env, folder, opts)
    print("| server | connections hanging | GETs | median GET / | slowest | not answered | hanging POSTs answered 408 |")
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        print(case.row(opts.wait if "gunicorn_conf" in case.server else opts.old_wait))
    configured = [t for c in cases if "gunicorn_conf" in c.server for t in c.times]
    ok = all(t is not None and t < 1.0 for t in configured)
    print(f"\nconfigured server: every GET / under 1 s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
