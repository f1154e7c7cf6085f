"""Rate limit of public submissions per client address, on the ``limits`` library.

One limiter per app (kept in ``app.extensions``), so every test app starts
with empty counters. ``RATELIMIT_STORAGE_URI`` is memory:// (the default: one
process, ``kyodo serve``) or a Redis URI (one count for every gunicorn worker,
and it survives a worker's restart). The app refuses to start under gunicorn
with more than one worker and memory:// (:func:`shared_storage`): each
worker would count apart, multiplying the limit.

What counts is the view's to say (``limited_when``): the proposal form counts
the final 送信 only, never its confirm, edit or error rounds, so a person
correcting a long proposal is not locked out. The same store keeps the
one-time claims of the form's confirmation tokens (``claim_once``) and the
short-lived records read once (``keep_once``, ``take_once``): the receipt
page's status link, kept there rather than in the session cookie.
"""

from __future__ import annotations

import math
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Protocol

from flask import Flask, current_app, jsonify, make_response, render_template, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

# A confirmation token is claimed once; a day is longer than any confirmation page stays open.
_ONCE = parse("1/day")


class Records(Protocol):
    """Values read once, gone after ``seconds`` if never read."""

    def put(self, key: str, value: str, seconds: int) -> None: ...

    def take(self, key: str) -> str | None: ...


@dataclass
class MemoryRecords:
    """In this process (memory://, one process only: see :func:`shared_storage`)."""

    values: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, key: str, value: str, seconds: int) -> None:
        now = time.monotonic()
        with self.lock:
            for old in [k for k, (_, until) in self.values.items() if until < now]:
                del self.values[old]
            self.values[key] = (value, now + seconds)

    def take(self, key: str) -> str | None:
        with self.lock:
            value, until = self.values.pop(key, ("", 0.0))
        return value if until >= time.monotonic() else None


@dataclass
class RedisRecords:
    """In the Redis of RATELIMIT_STORAGE_URI, shared by every worker; GETDEL reads once."""

    client: Any
    prefix: str = "kyodo:once:"

    def put(self, key: str, value: str, seconds: int) -> None:
        self.client.set(self.prefix + key, value, ex=seconds)

    def take(self, key: str) -> str | None:
        value = self.client.getdel(self.prefix + key)
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SubmitLimiter:
    limiter: MovingWindowRateLimiter
    item: RateLimitItem
    records: Records
    enabled: bool = True


def gunicorn_workers() -> int | None:
    """The worker count of the gunicorn server loading this app, None when
    gunicorn is not (``kyodo serve``, the commands, the tests).

    gunicorn calls ``create_app()`` from its application object (in each
    worker, or in the master with --preload), so that object, with the
    configuration as the command line, gunicorn.conf.py and WEB_CONCURRENCY
    made it, is on the stack.
    """
    if "gunicorn.app.base" not in sys.modules:
        return None
    from gunicorn.app.base import BaseApplication

    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseApplication) and candidate.cfg is not None:
            return int(candidate.cfg.workers)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def shared_storage(uri: str, workers: int | None) -> Storage:
    """The store of RATELIMIT_STORAGE_URI; refuses (one line) a store that
    cannot keep the receipt's one-time records, and memory:// when several
    gunicorn workers would each keep their own counts."""
    scheme = uri.partition("://")[0]
    if scheme != "memory" and not scheme.startswith(("redis", "valkey")):
        raise ValueError(f"KYODO_RATELIMIT_STORAGE_URI: expected memory:// or redis://host:6379, got {uri!r}")
    storage = storage_from_string(uri)
    if not isinstance(storage, Storage):  # an async+ scheme: Flask's views are synchronous
        raise ValueError(f"KYODO_RATELIMIT_STORAGE_URI: expected memory:// or redis://host:6379, got {uri!r}")
    if isinstance(storage, MemoryStorage) and (workers or 1) > 1:
        raise ValueError(
            f"KYODO_RATELIMIT_STORAGE_URI: {uri} counts in each process, and gunicorn runs {workers} workers: "
            "set it to redis://host:6379 (one count for all, kept across restarts) or run one worker"
        )
    return storage


def _records(storage: Storage) -> Records:
    if isinstance(storage, RedisStorage):
        return RedisRecords(storage.storage)
    return MemoryRecords()


def init_app(app: Flask) -> None:
    try:
        item = parse(app.config["SUBMIT_RATE_LIMIT"])
    except ValueError:
        raise ValueError(
            f"KYODO_SUBMIT_RATE_LIMIT: expected N/second|minute|hour|day, got {app.config['SUBMIT_RATE_LIMIT']!r}"
        ) from None
    storage = shared_storage(app.config["RATELIMIT_STORAGE_URI"], gunicorn_workers())
    app.extensions["submit_limiter"] = SubmitLimiter(MovingWindowRateLimiter(storage), item, _records(storage))


def _state() -> SubmitLimiter:
    state: SubmitLimiter = current_app.extensions["submit_limiter"]
    return state


def wait_text(seconds: int) -> str:
    """How long to wait, as a person says it: 約40秒, 約3分, 約2時間.

    >>> wait_text(40), wait_text(61), wait_text(3599), wait_text(7200)
    ('約40秒', '約2分', '約1時間', '約2時間')
    """
    if seconds < 60:
        return f"約{seconds}秒"
    minutes = math.ceil(seconds / 60)
    return f"約{minutes}分" if minutes < 60 else f"約{math.ceil(seconds / 3600)}時間"


def too_many(retry_after: int) -> Any:
    """The 429: JSON under /api, else the Japanese page saying how long to wait (and Retry-After)."""
    message = f"短い時間に送信が続いたため、受け付けを一時的に止めています。{wait_text(retry_after)}待ってから、もう一度お試しください。"
    if request.path.startswith("/api/"):
        response = make_response(jsonify(error="too_many_requests", message=message, retry_after=retry_after), 429)
    else:
        hint = "入力した内容は、まだ送信されていません。ブラウザの「戻る」で前の画面に戻ると、内容が残っています。"
        page = render_template("error.html", code=429, title="送信が多すぎます", message=message, hint=hint)
        response = make_response(page, 429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def over_limit(scope: str, identifier: str | None = None, limit: str | None = None) -> int | None:
    """Count one hit of ``scope`` for ``identifier`` (default: the client
    address) against ``limit`` (N/minute…; default: SUBMIT_RATE_LIMIT); the
    seconds to wait when that is one too many, else None."""
    state = _state()
    if not state.enabled:
        return None
    item = parse(limit) if limit else state.item
    key = identifier or request.remote_addr or "unknown"
    if state.limiter.hit(item, scope, key):
        return None
    stats = state.limiter.get_window_stats(item, scope, key)
    return max(1, math.ceil(stats.reset_time - time.time()))


def limited_when(counts: Callable[[], bool], scope: str = "submit") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count the requests to a view for which ``counts()`` is true against the
    client address's limit of ``scope``; one too many gets the 429."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if counts():
                retry_after = over_limit(scope)
                if retry_after is not None:
                    return too_many(retry_after)
            return view(*args, **kwargs)

        return limited

    return decorate


def is_post() -> bool:
    return request.method == "POST"


# Every POST to the view is a submission (the API's create: a system submits, each attempt counts).
submit_limit = limited_when(is_post)


def claim_once(key: str) -> bool:
    """True the first time ``key`` is claimed (in the shared store: two workers
    receiving the same double click agree), False after."""
    return _state().limiter.hit(_ONCE, "once", key)


def release_once(key: str) -> None:
    """Forget a claim whose work failed, so the same confirmation may be sent again."""
    _state().limiter.clear(_ONCE, "once", key)


def keep_once(value: str, seconds: int) -> str:
    """Keep ``value`` for one read within ``seconds``; returns the random key to read it with."""
    key = secrets.token_urlsafe(16)
    _state().records.put(key, value, seconds)
    return key


def take_once(key: str) -> str | None:
    """The value kept under ``key``, once: None after the first read, or once expired."""
    return _state().records.take(key)
