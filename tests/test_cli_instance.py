"""A ``kyodo`` command run where there is no instance stops with one readable
line instead of quietly creating a second, empty one."""

from __future__ import annotations

from click.testing import CliRunner

from web.cli import cli


def test_a_command_without_an_instance_stops_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KYODO_INSTANCE_PATH", raising=False)
    monkeypatch.delenv("KYODO_DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["users", "list"])
    assert result.exit_code == 1
    assert f"no kyodo instance at {tmp_path / 'instance'}" in result.output
    assert not (tmp_path / "instance").exists()
    shown = runner.invoke(cli, ["settings"])
    assert shown.exit_code == 0 and f"instance: {tmp_path / 'instance'} (none yet" in shown.stderr
    created = runner.invoke(cli, ["--create-instance", "users", "list"])
    assert created.exit_code == 0, created.output
    assert (tmp_path / "instance" / "kyodo.sqlite3").exists()
    assert runner.invoke(cli, ["users", "list"]).exit_code == 0  # now there is one
