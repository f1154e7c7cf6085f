"""Every setting is declared once, documented, and read from the environment."""

from pathlib import Path

import pytest

from web import create_app, settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_docs_list_every_setting_as_declared():
    text = DOC.read_text(encoding="utf-8")
    assert text == settings.settings_document(), "regenerate: kyodo settings > docs/settings.md"
    for setting in settings.SETTINGS:
        assert setting.help.strip()
        assert f"`KYODO_{setting.name}`" in text


def test_environment_overrides_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("KYODO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("KYODO_TOP_K", "7")
    monkeypatch.setenv("KYODO_SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("KYODO_SECRET_KEY", "from-env" * 4)
    app = create_app()
    assert app.instance_path == str(tmp_path)
    assert app.config["TOP_K"] == 7
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SECRET_KEY"] == "from-env" * 4
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path}/kyodo.sqlite3"


def test_instance_config_file_then_environment(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("TOP_K = 3\nPAGE_SIZE = 10\n")
    monkeypatch.setenv("KYODO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("KYODO_PAGE_SIZE", "50")
    app = create_app()
    assert app.config["TOP_K"] == 3
    assert app.config["PAGE_SIZE"] == 50


def test_secret_key_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("KYODO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("KYODO_SECRET_KEY", raising=False)
    first = create_app().config["SECRET_KEY"]
    assert len(first) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == first
    assert create_app().config["SECRET_KEY"] == first


@pytest.mark.parametrize(
    ("name", "raw"), [("TOP_K", "five"), ("SESSION_COOKIE_SECURE", "maybe"), ("MATCH_MODE", "fuzzy")]
)
def test_bad_environment_values_are_named(monkeypatch, tmp_path, name, raw):
    monkeypatch.setenv("KYODO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(f"KYODO_{name}", raw)
    with pytest.raises(ValueError, match=f"KYODO_{name}"):
        create_app()
