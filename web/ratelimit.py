"""Rate limit of public submissions per client address, on the ``limits`` library.

One limiter per app (kept in ``app.extensions``), so every test app starts
with empty counters. ``RATELIMIT_STORAGE_URI`` may name a shared store
(``redis://...``) when several gunicorn workers must share one count; the
default, in memory, counts per worker process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, current_app, jsonify, make_response, render_template, request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


@dataclass
class SubmitLimiter:
    limiter: MovingWindowRateLimiter
    item: RateLimitItem
    enabled: bool = True


def init_app(app: Flask) -> None:
    try:
        item = parse(app.config["SUBMIT_RATE_LIMIT"])
    except ValueError:
        raise ValueError(
            f"KYODO_SUBMIT_RATE_LIMIT: expected N/second|minute|hour|day, got {app.config['SUBMIT_RATE_LIMIT']!r}"
        ) from None
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["submit_limiter"] = SubmitLimiter(MovingWindowRateLimiter(storage), item)


def _too_many(retry_after: int) -> Any:
    message = "送信が多すぎます。しばらく待ってから再度お試しください。"
    if request.path.startswith("/api/"):
        response = make_response(jsonify(error="too_many_requests", message=message), 429)
    else:
        response = make_response(render_template("error.html", code=429, message=message), 429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def submit_limit(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count every POST to ``view`` against the client address's submission limit."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        state: SubmitLimiter = current_app.extensions["submit_limiter"]
        if request.method == "POST" and state.enabled:
            address = request.remote_addr or "unknown"
            if not state.limiter.hit(state.item, "submit", address):
                stats = state.limiter.get_window_stats(state.item, "submit", address)
                return _too_many(max(1, math.ceil(stats.reset_time - time.time())))
        return view(*args, **kwargs)

    return limited
