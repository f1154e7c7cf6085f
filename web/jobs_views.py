"""The rematch card of the dashboard (``_rematch_card.html``): the last and the
next run, the progress of a running one, and 今すぐ再マッチ. Login required."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlmodel import Session, col, func, select

from models.clock import as_utc, utcnow
from models.labels import RunStatus
from models.locks import is_free
from models.suggestions import recent_runs
from models.tables import MatchOutcome, MatchRun, Proposal
from office.rematch import REMATCH_LOCK
from office.rematch_requests import record_rematch_request
from web import jobs
from web.auth import current_actor, require_login
from web.db import get_engine, get_session

bp = Blueprint("jobs", __name__)
WORKER_SILENT_AFTER = timedelta(minutes=3)  # the worker's mail task runs every minute
QUEUED_MESSAGE = "再マッチを予約しました（数分で候補に反映されます）"


bp.before_request(require_login)


class RematchForm(FlaskForm):
    """今すぐ再マッチ: no field, the CSRF token only."""


@bp.route("/jobs/rematch", methods=["POST"])
def rematch_now():  # type: ignore[no-untyped-def]
    """Queue a rematch (or join the one queued) and say so on the dashboard."""
    if not RematchForm().validate_on_submit():
        flash("再マッチを予約できませんでした。ページを読み込み直してからもう一度押してください。", "error")
        return redirect(url_for("review.dashboard"))
    try:
        queued = jobs.request_rematch(current_app._get_current_object(), f"dashboard:{current_user.username}")  # type: ignore[attr-defined]
    except jobs.QueueError:
        current_app.logger.exception("jobs: 今すぐ再マッチ could not be queued")
        flash("再マッチを予約できませんでした（ジョブキューに接続できません）。管理者に連絡してください。", "error")
        return redirect(url_for("review.dashboard"))
    record_rematch_request(session=get_session(), queued=queued, actor=current_actor())
    flash(QUEUED_MESSAGE if queued else "再マッチはすでに予約されています（数分で候補に反映されます）", "info")
    return redirect(url_for("review.dashboard"))


def _progress(session: Session, run: MatchRun) -> dict[str, int]:
    """Proposals the running run has written (one outcome row each, committed by chunk) of all."""
    done = session.exec(select(func.count()).select_from(MatchOutcome).where(col(MatchOutcome.match_run_id) == run.id)).one()
    total = session.exec(select(func.count()).select_from(Proposal)).one()
    return {"done": int(done), "total": int(total), "percent": int(100 * done / total) if total else 0}


def _runs(app: Flask) -> dict[str, Any]:
    engine = get_engine(app)
    with Session(engine) as session:
        runs = recent_runs(session=session, limit=10)
        newest = runs[0] if runs else None
        running = newest if newest is not None and newest.status == RunStatus.RUNNING.value else None
        alive = running is not None and not is_free(engine, REMATCH_LOCK)
        return {
            "last": next((r for r in runs if r.status != RunStatus.RUNNING.value), None),
            "running": running if alive else None,
            "progress": _progress(session, running) if running is not None and alive else None,
        }


def _queue(app: Flask) -> dict[str, Any]:
    try:
        return {"queued": jobs.queued_rematch(app), "worker_seen": jobs.last_seen_worker(app), "queue_error": None}
    except Exception as exc:  # Redis down: the card says so, the dashboard still opens
        app.logger.warning("jobs: the queue is unavailable: %s", exc)
        return {"queued": None, "worker_seen": None, "queue_error": f"{type(exc).__name__}: {exc}"}


def rematch_status(app: Flask) -> dict[str, Any]:
    """What ``_rematch_card.html`` shows; times are aware (the ``jst`` filter prints them).

    ``last``: the newest finished MatchRun (succeeded or failed) or None;
    ``running``: the MatchRun running now (its lock held) or None, with
    ``progress`` {done, total, percent} proposals; ``queued``: the queued
    rematch {reason, queued_at, task_id} or None; ``next_at``: when the next run
    starts (queued_at of the queued one, else the next REMATCH_AT) and
    ``next_is_queued``; ``rematch_at`` "HH:MM" JST; ``worker_seen`` (None: never)
    and ``worker_silent`` (no worker for 3 minutes: queued runs wait);
    ``queue_error``: why the queue could not be read, or None.
    """
    hour, minute = jobs.parse_rematch_at(app.config.get("REMATCH_AT", "02:30"))
    status = {**_runs(app), **_queue(app), "rematch_at": f"{hour:02d}:{minute:02d}"}
    queued = status["queued"]
    status["next_is_queued"] = queued is not None
    status["next_at"] = queued["queued_at"] if queued else jobs.next_nightly(utcnow(), hour, minute)
    seen = status["worker_seen"]
    status["worker_silent"] = seen is None or utcnow() - as_utc(seen) > WORKER_SILENT_AFTER
    return status


def init_app(app: Flask) -> None:
    """The queue (its settings checked now), the route, and ``rematch_status()``
    for the partial, so a page includes it without passing anything."""
    jobs.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["rematch_status"] = lambda: rematch_status(current_app._get_current_object())  # type: ignore[attr-defined]
