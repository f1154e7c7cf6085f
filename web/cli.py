"""The ``kyodo`` command: matching on files, the database, the nightly batch
and the web server. Each command's docstring is its ``--help``."""

from __future__ import annotations

import click

from matcher.cli import evaluate_command, match_command


@click.group()
@click.version_option(package_name="kyodo-match")
def cli() -> None:
    """協働マッチ (kyodo-match): match NPO proposals with the city's programs.

    Settings come from KYODO_* environment variables and the instance
    folder's config.py (see docs/settings.md).
    """


cli.add_command(match_command)
cli.add_command(evaluate_command)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
def serve_command(host: str, port: int) -> None:
    """Run the web app on the embedded default (SQLite in ./instance).

    A background thread sends the e-mail outbox every 30 seconds (docs/mail.md).
    For production run gunicorn instead: gunicorn 'web:create_app()', with
    kyodo mail send from cron.
    """
    from web import create_app
    from web.mail import start_background_sender

    app = create_app()
    click.echo(f"協働マッチ: http://{host}:{port}/  (instance: {app.instance_path})")
    start_background_sender(app)
    app.run(host=host, port=port)

from web.cli_data import (  # noqa: E402
    db_group,
    embeddings_group,
    programs_group,
    proposals_group,
    rematch_command,
)

cli.add_command(db_group)
cli.add_command(embeddings_group)
cli.add_command(programs_group)
cli.add_command(proposals_group)
cli.add_command(rematch_command)

from web.cli_departments import departments_group  # noqa: E402
from web.cli_mail import mail_group  # noqa: E402
from web.cli_web import tokens_group, users_group  # noqa: E402

cli.add_command(departments_group)
cli.add_command(mail_group)

cli.add_command(users_group)
cli.add_command(tokens_group)


@cli.command("settings")
def settings_command() -> None:
    """Print every setting, its environment variable, default and help (Markdown).

    This is docs/settings.md: kyodo settings > docs/settings.md
    """
    from web.settings import settings_document

    click.echo(settings_document(), nl=False)
