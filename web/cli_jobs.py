"""``kyodo worker`` and ``kyodo jobs``: the background job queue (docs/jobs.md)."""

from __future__ import annotations

import logging

import click


@click.command("worker")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Tasks run at the same time (threads); two, so mail goes out during a long "
                   "rematch. One rematch runs at a time whatever the number.")
def worker_command(workers: int) -> None:
    """Run the background jobs: the nightly rematch at KYODO_REMATCH_AT (Japan
    time), the rematches queued by catalogue and keyword changes, and the
    e-mail outbox every minute.

    Runs until stopped: Ctrl-C (SIGINT) lets running tasks finish; SIGTERM
    stops at once, and a task cut short is run again at the next start (while
    it has retries left). The queue is KYODO_QUEUE_URL (default: jobs.sqlite3
    in the instance folder). For systemd see docs/kyodo-worker.service.
    """
    # Before the app: its logger then writes through this handler, with huey's.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # huey logs two lines per task at INFO, i.e. every minute for the mail; its warnings
    # (retries, interruptions) stay. Our tasks log what they did on the app's logger.
    logging.getLogger("huey").setLevel(logging.WARNING)
    from web import create_app
    from web.jobs import get_jobs, queue_backend, run_worker

    app = create_app()
    cls, storage = queue_backend(app.config["QUEUE_URL"], app.instance_path)
    where = storage.get("filename") or _safe(storage.get("url", ""))
    hour, minute = get_jobs(app).rematch_at
    click.echo(f"協働マッチ worker: {cls.__name__} {where}; nightly rematch at {hour:02d}:{minute:02d} JST", err=True)
    run_worker(app, workers=workers)


def _safe(url: str) -> str:
    """A Redis URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: print the scheme only
        return url.split("://", 1)[0] + "://…"


@click.group("jobs")
def jobs_group() -> None:
    """The background job queue."""


@jobs_group.command("rematch")
def jobs_rematch_command() -> None:
    """Queue a rematch for the worker (one already queued and not started is reused)."""
    from web import create_app
    from web.jobs import QueueError, request_rematch

    app = create_app()
    try:
        queued = request_rematch(app, "cli")
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("rematch queued" if queued else "a rematch is already queued; it will read the latest changes")


@jobs_group.command("status")
def jobs_status_command() -> None:
    """The queued rematch, tasks waiting and when a worker was last seen."""
    from models.clock import to_jst
    from web import create_app
    from web.jobs import get_jobs, last_seen_worker, leases, queued_rematch

    app = create_app()
    jobs = get_jobs(app)
    queued = queued_rematch(app)
    seen = last_seen_worker(app)
    click.echo(f"pending: {jobs.huey.pending_count()}, scheduled: {jobs.huey.scheduled_count()}, "
               f"running: {len(leases(jobs))}")
    click.echo("rematch queued: " + (f"{queued['reason']} at {to_jst(queued['queued_at']):%Y-%m-%d %H:%M} JST"
                                     if queued else "no"))
    click.echo("worker last seen: " + (f"{to_jst(seen):%Y-%m-%d %H:%M:%S} JST" if seen else "never"))
