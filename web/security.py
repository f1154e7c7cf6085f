"""What keeps an instance safe to run, checked or applied at every start and on
every response (docs/security.md):

- the secret key: generated once per instance folder, created atomically so
  that workers starting together all read the same one; a key under 32 bytes
  (from KYODO_SECRET_KEY, config.py or the file) refuses to start;
- the instance folder (0700) and the SQLite database, its -wal / -shm files,
  the job queue's file and the key (0600), readable by the app's user only;
- the security headers of every response: a Content-Security-Policy without
  inline script or style, no framing, no MIME sniffing, no Referer leaving the
  site, and none at all (nor a cached copy) from a page whose URL carries a secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, Response, request

MIN_KEY_BYTES = 32  # HMAC-SHA1 (itsdangerous) and the signed links: 256 bits and more
KEY_FILE = "secret_key"
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
# Files directly in the instance folder kept private at start: the databases
# (ours and the job queue's, with SQLite's side files), the key, config.py
# (it may hold MAIL_PASSWORD or SECRET_KEY). The folder's 0700 covers the rest
# (outbox/*.eml, the index folders).
PRIVATE_NAMES = ("*.sqlite3", "*.sqlite3-wal", "*.sqlite3-shm", "*.sqlite3-journal", KEY_FILE, "config.py")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",  # web/static/*.js only: no inline script, no on*= handler
    "style-src 'self'",  # web/static/style.css only: no style attribute (the score bar is a class)
    "img-src 'self'",
    "connect-src 'self'",  # decide.js posts decisions with fetch
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The URL variable naming a secret: /status/<token>, /opinions/<token>, /setup/<token>.
SECRET_ARGUMENT = "token"

log = logging.getLogger(__name__)


# -- the secret key -----------------------------------------------------------------


def check_secret_key(key: str | bytes, source: str) -> None:
    """ValueError (one line) when ``key`` is shorter than MIN_KEY_BYTES."""
    length = len(key if isinstance(key, bytes) else key.encode())
    if length < MIN_KEY_BYTES:
        raise ValueError(
            f"{source}: the secret key is {length} bytes long, at least {MIN_KEY_BYTES} are needed "
            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))'; "
            "or unset KYODO_SECRET_KEY to use the one generated in the instance folder)"
        )


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def instance_secret_key(folder: Path) -> str:
    """The instance's generated key, made on first start.

    The key is written whole to a private temporary file, then hard-linked to
    ``secret_key``: the link either appears with the full key or fails because
    another process linked first, so every process reads back the same key and
    none ever reads a half-written (empty) file. A key file under 32 bytes
    (hand-written, or left empty by an older version) refuses to start.
    """
    path = folder / KEY_FILE
    key = _read_key(path)
    if key is None:
        temporary = folder / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(8)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(secrets.token_hex(32))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: read its key
                os.link(temporary, path)
        finally:
            temporary.unlink()
        key = _read_key(path) or ""
    check_secret_key(key, f"{path} (delete the file to have a new key generated)")
    return key


# -- private files ------------------------------------------------------------------


def _make_private(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` when group or others may read it; a file of
    another user is left as it is, with a warning (starting matters more)."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)
    except FileNotFoundError:
        return
    except PermissionError:
        log.warning("cannot make %s private (chmod %o): it belongs to another user", path, mode)


def private_instance(folder: Path, database_url: str) -> None:
    """Create the instance folder 0700 (or make it so), make its databases, key
    and config.py 0600, and create a missing SQLite database file 0600 before
    SQLite does (its -wal and -shm files then take the same mode)."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    _make_private(folder, PRIVATE_FOLDER)
    for pattern in PRIVATE_NAMES:
        for path in folder.glob(pattern):
            _make_private(path, PRIVATE_FILE)
    database = sqlite_file(database_url)
    if database is not None:
        create_private_file(database)
        for path in (database, *(Path(f"{database}{side}") for side in SQLITE_SIDE_FILES)):
            _make_private(path, PRIVATE_FILE)


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    # Imported here: `kyodo match` imports this package and needs no database.
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if str(url.database).startswith("file:"):  # a URI filename: SQLite's own rules apply
        return None
    return Path(str(url.database))


def create_private_file(path: Path) -> None:
    """An empty file is an empty SQLite database: made here with mode 0600."""
    if not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


# -- response headers ------------------------------------------------------------------


def no_store(response: Response) -> Response:
    """A page showing or addressed by a secret: no cache keeps it, no Referer carries its URL away."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _secret_in_url() -> bool:
    rule = request.url_rule
    arguments: Iterable[str] = rule.arguments if rule is not None else ()
    return SECRET_ARGUMENT in arguments


def add_headers(response: Response) -> Response:
    """Every response's security headers; a view's own value of one is kept."""
    if _secret_in_url():
        no_store(response)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:  # over TLS (directly, or as the trusted proxy says): stay on it
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
