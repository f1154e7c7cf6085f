"""The Flask app: public proposal form, coordinator console and JSON API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from web import security, settings


class BoundedInt(IntegerConverter):
    """``<int:…>`` of every route, bounded by the database's integer (2³¹ − 1)."""

    def __init__(self, url_map: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, **kwargs)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults → instance config.py → KYODO_* environment → test_config."""
    instance = (test_config or {}).get("INSTANCE_PATH") or settings.instance_path()
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    # Ids beyond PostgreSQL's integer are no row of ours: such a URL is a 404, not an overflow.
    app.url_map.converters["int"] = BoundedInt
    app.config.from_mapping(settings.defaults())
    app.config.from_pyfile("config.py", silent=True)
    environment = settings.from_environment()
    app.config.update(environment)
    if test_config:
        app.config.update(test_config)
    app.config["INSTANCE_PATH"] = app.instance_path
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "kyodo.sqlite3")
    security.private_instance(Path(app.instance_path), app.config["DATABASE_URL"])
    if app.config.get("SECRET_KEY"):
        from_environment = environment.get("SECRET_KEY") == app.config["SECRET_KEY"]
        source = "KYODO_SECRET_KEY" if from_environment else "SECRET_KEY (config.py)"
        security.check_secret_key(app.config["SECRET_KEY"], source)
    else:
        app.config["SECRET_KEY"] = security.instance_secret_key(Path(app.instance_path))
    if not app.config.get("INDEX_PATH"):
        app.config["INDEX_PATH"] = os.path.join(app.instance_path, "index")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    _register(app)
    return app


def _behind_proxies(app: Flask, proxy_fix: Any) -> None:
    """Trust PROXY_COUNT proxies' X-Forwarded-* headers (none by default)."""
    if app.config["PROXY_COUNT"]:
        n = app.config["PROXY_COUNT"]
        app.wsgi_app = proxy_fix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]


def _register(app: Flask) -> None:
    """Database, blueprints and error handlers; each feature module registers itself."""
    from web import db

    db.init_app(app)

    from flask_wtf.csrf import CSRFProtect
    from werkzeug.middleware.proxy_fix import ProxyFix

    from web import (
        api,
        api_workflow,  # noqa: F401 (its routes join web.api's blueprint on import)
        auth,
        deciding,
        departments,
        errors,
        filters,
        jobs_views,
        opinion_page,
        programs,
        public,
        ratelimit,
        related,
        review,
        themes,
        uploads,
        users,
        workflow,
    )

    _behind_proxies(app, ProxyFix)
    app.before_request(uploads.allow_upload_size)  # before CSRFProtect reads the form
    csrf = CSRFProtect(app)
    ratelimit.init_app(app)
    security.init_app(app)  # the headers of every response, error pages included
    filters.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    users.init_app(app)  # /users and the first-run /setup/<token>
    public.init_app(app)
    review.init_app(app)
    deciding.init_app(app)
    programs.init_app(app)
    departments.init_app(app)
    workflow.init_app(app)
    themes.init_app(app)  # /themes/<id>, the dashboard's themes and the joint 協働事業 on two pages
    opinion_page.init_app(app)
    related.init_app(app)  # related and duplicate proposals: the panel, the badge, merge / not-duplicate
    jobs_views.init_app(app)  # the job queue (settings checked here) and the rematch card's route
    api.init_app(app, csrf)  # with the workflow routes of api_workflow, on the same blueprint
