"""The ``kyodo`` command: matching on files, the database, the nightly batch
and the web server. Each command's docstring is its ``--help``."""

from __future__ import annotations

import importlib

import click

# Commands that may create the instance (its folder and SQLite database), and
# those that never open it. Any other command run where there is no instance
# stops instead of quietly starting a second, empty one.
CREATES_INSTANCE = {"serve", "db"}
NO_INSTANCE = {"match", "evaluate", "themes", "settings"}


class LazyGroup(click.Group):
    """A group whose listed subcommands are imported when they are run (or
    listed by --help): ``kyodo match`` then loads the matcher alone, not the
    web app, the database layer and the job queue (about 0.7 s of a run).
    Click's documented pattern for large command sets."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


# name → "module:attribute" of every subcommand defined outside this file.
SUBCOMMANDS = {
    "match": "matcher.cli:match_command",
    "evaluate": "matcher.cli:evaluate_command",
    "themes": "matcher.cli_themes:themes_command",
    "db": "web.cli_data:db_group",
    "embeddings": "web.cli_data:embeddings_group",
    "programs": "web.cli_data:programs_group",
    "proposals": "web.cli_data:proposals_group",
    "rematch": "web.cli_data:rematch_command",
    "departments": "web.cli_departments:departments_group",
    "mail": "web.cli_mail:mail_group",
    "users": "web.cli_web:users_group",
    "tokens": "web.cli_web:tokens_group",
    "worker": "web.cli_jobs:worker_command",
    "jobs": "web.cli_jobs:jobs_group",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
@click.version_option(package_name="kyodo-match")
@click.option("--create-instance", is_flag=True,
              help="Let this command create the instance folder and database if there is none.")
@click.pass_context
def cli(ctx: click.Context, create_instance: bool) -> None:
    """協働マッチ (kyodo-match): match NPO proposals with the city's programs.

    Settings come from KYODO_* environment variables and the instance
    folder's config.py (see docs/settings.md). The instance folder is
    KYODO_INSTANCE_PATH, else ./instance; `kyodo settings` says which.
    """
    command = ctx.invoked_subcommand or ""
    if create_instance or command in CREATES_INSTANCE | NO_INSTANCE:
        return
    missing = missing_instance()
    if missing:
        raise click.ClickException(missing)


def missing_instance() -> str | None:
    """Why there is no instance to work on here, or None when there is one
    (a SQLite database or a config.py in the folder, or KYODO_DATABASE_URL)."""
    import os
    from pathlib import Path

    from web.settings import ENV_PREFIX, instance_path

    folder = Path(instance_path())
    if os.environ.get(ENV_PREFIX + "DATABASE_URL") or (folder / "kyodo.sqlite3").exists() or (folder / "config.py").exists():
        return None
    return (f"no kyodo instance at {folder}: run this where `kyodo serve` was first run, set "
            f"{ENV_PREFIX}INSTANCE_PATH, or pass --create-instance to start a new, empty one here")



@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
def serve_command(host: str, port: int) -> None:
    """Run the web app on the embedded default (SQLite in ./instance).

    The job queue's worker runs inside it (e-mail every minute, the nightly
    rematch at KYODO_REMATCH_AT, rematches queued by edits; docs/jobs.md), so no
    cron is needed. On an instance with no coordinator yet it prints a one-time
    setup address. For production run gunicorn -c python:web.gunicorn_conf
    'web:create_app()' (docs/production.md) and
    kyodo worker beside it.
    """
    from web import create_app
    from web.jobs import start_embedded_worker
    from web.setup import setup_message

    app = create_app()
    click.echo(f"協働マッチ: http://{host}:{port}/  (instance: {app.instance_path})")
    message = setup_message(app, base_url=f"http://{host}:{port}")
    if message:
        click.echo(message)
    worker = start_embedded_worker(app)
    try:
        # No reloader: it would start a second worker in the child process.
        app.run(host=host, port=port, use_reloader=False)
    finally:
        worker.stop()


@cli.command("settings")
def settings_command() -> None:
    """Print every setting, its environment variable, default and help (Markdown).

    This is docs/settings.md: kyodo settings > docs/settings.md
    """
    from web.settings import instance_path, settings_document

    click.echo(settings_document(), nl=False)
    # On standard error, so that `kyodo settings > docs/settings.md` stays the document.
    state = "" if missing_instance() is None else " (none yet: kyodo serve creates it)"
    click.echo(f"instance: {instance_path()}{state}", err=True)
