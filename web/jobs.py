"""Background jobs with huey: one queue per app, the tasks it runs, the
coalesced rematch request and the consumer of ``kyodo worker`` / ``kyodo serve``.

How the worker finds the app: the tasks are closures over the Flask app that
built them (:func:`build_jobs`), so each app has its own huey instance and
registry. ``kyodo worker`` calls ``create_app()`` (the same factory and
KYODO_* settings as the web app) and runs the consumer of that app's huey;
the web processes build the same tasks to enqueue them. Both sides only need
the same KYODO_QUEUE_URL. huey's own ``huey_consumer`` command is not used.
The catalogue import's task hands its work to :mod:`web.catalogue_import`.

Times: huey runs with ``utc=True``, so the consumer hands naive UTC times to
the periodic validators; :func:`at_jst` converts them to Japan time before
comparing with KYODO_REMATCH_AT (Japan has no daylight saving time). See
docs/jobs.md.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey
from huey.consumer import Consumer, ConsumerStopped
from huey.exceptions import RetryTask

from models.clock import JST, utcnow
from models.locks import LockHeld, pid_alive
from web.db import get_engine, get_matching
from web.mail import send_now
from web.security import create_private_file

DEFAULT_NAME = "kyodo"
EXTENSION = "kyodo_jobs"
SQLITE_FILE = "jobs.sqlite3"  # in the instance folder: a fresh machine needs no server
# Keys in huey's key-value store (the same store as the queue, so one backend).
QUEUED_KEY = "kyodo:rematch-queued"  # set while a rematch is queued and not started
LEASE_PREFIX = "kyodo:lease:"  # one per task being executed: a killed worker leaves it behind
SEEN_KEY = "kyodo:worker-seen"  # refreshed every minute by the mail task: is a worker up?
REMATCH_RETRIES = 2  # a failed or killed rematch runs again twice, 5 minutes apart
REMATCH_RETRY_DELAY = 300
LOCKED_RETRY_DELAY = 60  # another rematch (cron, a second worker) holds the lock: try again
IMPORT_RETRIES = 2  # an import whose worker was killed starts over, twice at most
# A queued flag older than this whose task is nowhere (queue, schedule, lease)
# was left by a lost task; a new request replaces it instead of waiting forever.
ORPHAN_AFTER = timedelta(minutes=2)
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class QueueError(RuntimeError):
    """The queue's storage (Redis, the SQLite file) could not be reached."""


def parse_rematch_at(raw: str) -> tuple[int, int]:
    """KYODO_REMATCH_AT as (hour, minute), Japan time.

    >>> parse_rematch_at("02:30")
    (2, 30)
    """
    found = _TIME.fullmatch(str(raw).strip())
    if found is None:
        raise ValueError(f"KYODO_REMATCH_AT: expected HH:MM in Japan time (00:00 to 23:59), got {raw!r}")
    return int(found.group(1)), int(found.group(2))


def queue_backend(url: str, instance_path: str) -> tuple[type[Huey], dict[str, Any]]:
    """The huey class and its storage arguments for KYODO_QUEUE_URL; ValueError if unknown.

    >>> queue_backend("redis://127.0.0.1:6379/0", "/srv/instance")[0].__name__
    'RedisHuey'
    >>> queue_backend("", "/srv/instance")
    (<class 'huey.api.SqliteHuey'>, {'filename': '/srv/instance/jobs.sqlite3'})
    """
    url = (url or "").strip()
    if not url:
        return SqliteHuey, {"filename": str(Path(instance_path) / SQLITE_FILE)}
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey, {"url": url}
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return SqliteHuey, {"filename": url[len("sqlite:///"):]}
    raise ValueError(
        f"KYODO_QUEUE_URL: expected redis://host:6379/0 or sqlite:///path (empty: {SQLITE_FILE} "
        f"in the instance folder), got {url!r}"
    )


def at_jst(hour: int, minute: int) -> Callable[[datetime], bool]:
    """A periodic validator true in the minute hour:minute, Japan time, for
    huey's naive UTC timestamps (``utc=True``).

    >>> nightly = at_jst(2, 30)
    >>> nightly(datetime(2026, 4, 1, 17, 30)), nightly(datetime(2026, 4, 1, 17, 29))
    (True, False)
    """

    def validate(timestamp: datetime) -> bool:
        local = timestamp.replace(tzinfo=UTC).astimezone(JST)
        return (local.hour, local.minute) == (hour, minute)

    return validate


def next_nightly(now: datetime, hour: int, minute: int) -> datetime:
    """The next hour:minute in Japan time after ``now`` (aware), as an aware JST time.

    >>> next_nightly(datetime(2026, 4, 1, 17, 30, tzinfo=UTC), 2, 30).isoformat()
    '2026-04-03T02:30:00+09:00'
    """
    local = now.astimezone(JST)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


@dataclass
class Jobs:
    """An app's queue and its tasks (huey TaskWrappers: call one to enqueue it)."""

    app: Flask
    huey: Huey
    rematch_at: tuple[int, int]
    rematch: Any = None
    send_mail: Any = None
    nightly_rematch: Any = None
    recover: Any = None
    import_programs: Any = None

    def flag(self, task_id: str, reason: str) -> dict[str, str]:
        return {"task_id": task_id, "reason": reason, "queued_at": utcnow().isoformat()}


def build_jobs(app: Flask, *, url: str | None = None, name: str = DEFAULT_NAME) -> Jobs:
    """A huey instance for the app (KYODO_QUEUE_URL unless ``url``) with every task registered."""
    cls, storage = queue_backend(app.config.get("QUEUE_URL", "") if url is None else url, app.instance_path)
    if "filename" in storage:  # the queue's SQLite file 0600 like the app's (its -wal and -shm follow)
        create_private_file(Path(storage["filename"]))
    # results=False: nobody reads task return values, so the store keeps only our keys.
    huey = cls(name, results=False, utc=True, **storage)
    jobs = Jobs(app=app, huey=huey, rematch_at=parse_rematch_at(app.config.get("REMATCH_AT", "02:30")))
    _register_tasks(jobs)
    _register_leases(jobs)
    return jobs


def _register_tasks(jobs: Jobs) -> None:
    huey, app = jobs.huey, jobs.app

    @huey.task(retries=REMATCH_RETRIES, retry_delay=REMATCH_RETRY_DELAY, context=True, name="rematch")
    def rematch(reason: str = "", task: Any = None) -> None:
        _run_rematch(jobs, reason, task)

    @huey.periodic_task(crontab(), name="send_mail")  # every minute; deliver_due claims, so overlaps are safe
    def send_mail() -> None:
        huey.put(SEEN_KEY, {"at": utcnow().isoformat(), "host": socket.gethostname(), "pid": os.getpid()})
        with app.app_context():
            report = send_now(app)
        if report.sent or report.retrying or report.failed:
            app.logger.info("mail: %s", report.summary())

    @huey.periodic_task(at_jst(*jobs.rematch_at), name="nightly_rematch")
    def nightly_rematch() -> None:
        # Through the request, so a rematch already queued by an edit is not run twice.
        request_rematch(app, "nightly")

    @huey.periodic_task(crontab(minute="*/5"), name="recover_interrupted")
    def recover() -> None:
        recover_interrupted(jobs)

    @huey.task(retries=IMPORT_RETRIES, retry_delay=LOCKED_RETRY_DELAY, context=True, name="import_programs")
    def import_programs(import_id: int, path: str, fiscal_year: int | None = None,
                        default_fiscal_year: int | None = None, task: Any = None) -> None:
        from web.catalogue_import import run_queued_import

        run_queued_import(app, import_id, path, fiscal_year, default_fiscal_year)

    jobs.rematch, jobs.send_mail, jobs.nightly_rematch, jobs.recover = rematch, send_mail, nightly_rematch, recover
    jobs.import_programs = import_programs


def _run_rematch(jobs: Jobs, reason: str, task: Any) -> None:
    """The rematch task: as ``kyodo rematch`` does, inside the app context."""
    huey, app = jobs.huey, jobs.app
    flag = huey.get(QUEUED_KEY, peek=True)
    if flag and flag.get("task_id") == task.id:
        huey.delete(QUEUED_KEY)  # started: an edit from now on queues the next run
    with app.app_context():
        try:
            report = get_matching(app).rematch(engine=get_engine(app))
        except LockHeld as exc:
            if huey.put_if_empty(QUEUED_KEY, jobs.flag(task.id, reason)):
                app.logger.info("rematch (%s): %s; trying again in %d s", reason, exc, LOCKED_RETRY_DELAY)
                raise RetryTask(delay=LOCKED_RETRY_DELAY) from exc
            app.logger.info("rematch (%s): %s; another request is queued, this one is dropped", reason, exc)
            return
    app.logger.info("rematch (%s): %s", reason, report.summary())


def _register_leases(jobs: Jobs) -> None:
    """A lease per task being executed (host, pid, the task itself): huey forgets a
    task once dequeued, so without it a worker killed mid-task loses the task."""
    huey = jobs.huey

    @huey.pre_execute(name="kyodo_lease")
    def take_lease(task: Any) -> None:
        huey.put(LEASE_PREFIX + task.id, {
            "host": socket.gethostname(), "pid": os.getpid(), "since": utcnow().isoformat(),
            "name": task.name, "message": huey.serialize_task(task),
        })

    @huey.post_execute(name="kyodo_lease")
    def drop_lease(task: Any, _value: Any, _exc: Any) -> None:
        huey.delete(LEASE_PREFIX + task.id)


def leases(jobs: Jobs) -> dict[str, dict[str, Any]]:
    """The leases of tasks being executed (or interrupted), by task id."""
    found = {}
    for key, raw in jobs.huey.all_results().items():
        if key.startswith(LEASE_PREFIX):
            found[key[len(LEASE_PREFIX):]] = jobs.huey.serializer.deserialize(raw)
    return found


def recover_interrupted(jobs: Jobs) -> int:
    """Queue again, with one retry fewer, the tasks whose worker process on this
    host died mid-task (SIGKILL, OOM, power loss); tasks without retries left
    are logged and dropped. Returns how many were queued again. Leases of other
    hosts are left to the workers of those hosts."""
    huey, logger = jobs.huey, jobs.app.logger
    host, requeued = socket.gethostname(), 0
    for task_id, lease in leases(jobs).items():
        if lease.get("host") != host or lease.get("pid") in (None, os.getpid()) or pid_alive(int(lease["pid"])):
            continue
        if huey.get(LEASE_PREFIX + task_id) is None:  # popped: only one recoverer takes it
            continue
        task = huey.deserialize_task(lease["message"])
        if task.retries <= 0:
            logger.warning("jobs: %s was interrupted (pid %s died) and has no retries left", task, lease["pid"])
            continue
        task.retries -= 1
        if task.name == "rematch" and not _flag_for(jobs, task.id):
            logger.info("jobs: %s was interrupted; another rematch is queued, which will do", task)
            continue
        huey.enqueue(task)
        requeued += 1
        logger.warning("jobs: %s was interrupted (pid %s died); queued again, %d retries left",
                       task, lease["pid"], task.retries)
    return requeued


def _flag_for(jobs: Jobs, task_id: str) -> bool:
    """Make ``task_id`` the queued rematch, unless another one is queued."""
    if jobs.huey.put_if_empty(QUEUED_KEY, jobs.flag(task_id, "retry")):
        return True
    flag = jobs.huey.get(QUEUED_KEY, peek=True)
    return bool(flag) and flag.get("task_id") == task_id  # killed before it took its flag down


# -- the app's jobs ---------------------------------------------------------------


class _Holder:
    """The app's Jobs, built on first use (no connection to Redis at create_app)."""

    def __init__(self) -> None:
        self.jobs: Jobs | None = None
        self.lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Check KYODO_QUEUE_URL and KYODO_REMATCH_AT at start (a clear error, not at
    02:30) and keep a place for the app's jobs."""
    queue_backend(app.config.get("QUEUE_URL", ""), app.instance_path)
    parse_rematch_at(app.config.get("REMATCH_AT", "02:30"))
    app.extensions[EXTENSION] = _Holder()


def get_jobs(app: Flask | None = None) -> Jobs:
    """The app's jobs, built from its settings on first use."""
    app = app or current_app
    holder: _Holder = app.extensions.setdefault(EXTENSION, _Holder())
    with holder.lock:
        if holder.jobs is None:
            holder.jobs = build_jobs(app)
        return holder.jobs


def install_jobs(app: Flask, *, url: str | None = None, name: str = DEFAULT_NAME) -> Jobs:
    """Replace the app's jobs (tests: another queue URL or name, i.e. key prefix)."""
    jobs = build_jobs(app, url=url, name=name)
    holder: _Holder = app.extensions.setdefault(EXTENSION, _Holder())
    with holder.lock:
        holder.jobs = jobs
    return jobs


# -- the coalesced rematch ------------------------------------------------------------


def request_rematch(app: Flask, reason: str) -> bool:
    """Queue a rematch, unless one is queued and not yet started: several edits,
    one run (it reads them all). True if this call queued it, False if it joined
    the queued one. Raises :class:`QueueError` when the queue cannot be reached."""
    try:
        jobs = get_jobs(app)  # building a SqliteHuey opens its file: inside the try
        huey, task = jobs.huey, jobs.rematch.s(reason)
        flag = jobs.flag(task.id, reason)
        if not huey.put_if_empty(QUEUED_KEY, flag):
            if not _orphaned(jobs):
                return False
            app.logger.warning("jobs: the queued rematch was lost; queuing a new one")
            huey.put(QUEUED_KEY, flag)
        try:
            huey.enqueue(task)
        except Exception:
            huey.delete(QUEUED_KEY)  # else no rematch could be queued again
            raise
    except Exception as exc:  # Redis down, the SQLite file unwritable…
        raise QueueError(f"the job queue is unavailable: {type(exc).__name__}: {exc}") from exc
    return True


def queued_rematch(app: Flask) -> dict[str, Any] | None:
    """The queued rematch (task id, reason, queued_at as an aware UTC time), if any."""
    flag = get_jobs(app).huey.get(QUEUED_KEY, peek=True)
    if not flag:
        return None
    return {**flag, "queued_at": datetime.fromisoformat(flag["queued_at"])}


def _orphaned(jobs: Jobs) -> bool:
    """The queued flag names a task that is nowhere: lost, not merely waiting."""
    flag = jobs.huey.get(QUEUED_KEY, peek=True)
    if not flag or utcnow() - datetime.fromisoformat(flag["queued_at"]) < ORPHAN_AFTER:
        return False
    huey = jobs.huey
    known = {t.id for t in huey.pending()} | {t.id for t in huey.scheduled()} | set(leases(jobs))
    return flag.get("task_id") not in known


def last_seen_worker(app: Flask) -> datetime | None:
    """When a worker last ran the every-minute task (aware UTC), or None."""
    seen = get_jobs(app).huey.get(SEEN_KEY, peek=True)
    return datetime.fromisoformat(seen["at"]) if seen else None


# -- consumers ------------------------------------------------------------------------


def run_worker(app: Flask, *, workers: int = 2) -> None:
    """``kyodo worker``: the consumer in this process until SIGINT (graceful:
    running tasks finish) or SIGTERM (at once; interrupted tasks are recovered)."""
    jobs = get_jobs(app)
    recover_interrupted(jobs)
    jobs.huey.create_consumer(workers=workers, worker_type="thread").run()


class _ThreadConsumer(Consumer):
    """huey's consumer without signal handlers: the host program (kyodo serve) owns them."""

    def _set_signal_handlers(self) -> None:
        pass


class EmbeddedWorker:
    """A consumer in background threads of this process (``kyodo serve``):
    scheduler, workers and the health check that restarts a dead worker thread."""

    def __init__(self, app: Flask, workers: int = 2, shutdown_timeout: float = 10.0):
        self.jobs = get_jobs(app)
        self.consumer = _ThreadConsumer(self.jobs.huey, workers=workers, worker_type="thread",
                                        shutdown_timeout=shutdown_timeout)
        self.thread = threading.Thread(target=self._run, name="kyodo-worker", daemon=True)

    def start(self) -> EmbeddedWorker:
        recover_interrupted(self.jobs)
        self.consumer.start()
        self.thread.start()
        return self

    def _run(self) -> None:
        checked = time.monotonic()
        while True:
            try:
                checked = self.consumer.loop(checked)
            except ConsumerStopped:
                return

    def stop(self) -> None:
        """Stop taking tasks; wait up to shutdown_timeout for running ones (a rematch
        cut short is recovered and run again at the next start)."""
        self.consumer.stop(graceful=True)
        self.thread.join(timeout=5)


def start_embedded_worker(app: Flask, workers: int = 2) -> EmbeddedWorker:
    """Start the app's consumer in background threads (kyodo serve, in place of
    the mail sender thread); call ``.stop()`` to end it. Two workers: mail goes
    out while a rematch runs."""
    return EmbeddedWorker(app, workers=workers).start()
