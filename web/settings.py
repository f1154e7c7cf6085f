"""Every setting of kyodo-match, declared once with its default and help.

Values come, later ones winning, from these defaults, the instance folder's
``config.py``, environment variables named ``KYODO_`` + the setting, and the
test dict given to ``create_app``. docs/settings.md is generated from this
table and a test fails when the two disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from corpus.files import DEFAULT_LIMITS
from matcher.semantic import MATCH_MODES


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    choices: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "INSTANCE_PATH",
        None,
        "Folder for the SQLite database, the generated secret key, config.py and the "
        "fitted index. Default: ./instance under the current directory.",
    ),
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/kyodo. "
        "Default: SQLite file kyodo.sqlite3 in the instance folder.",
    ),
    Setting(
        "SECRET_KEY",
        None,
        "Key that signs session cookies, CSRF tokens and the departments' links, at least 32 bytes "
        "(a shorter one refuses to start). Default: generated on first start and kept in the "
        "instance folder (file secret_key, mode 0600).",
    ),
    Setting(
        "INDEX_PATH",
        None,
        "Folder of the fitted indexes (one per published rematch run; the semantic layer's "
        "vectors stay in the database). Default: index in the instance folder.",
    ),
    Setting("SUBMIT_RATE_LIMIT", "10/minute", "Public proposal submissions allowed per client address, as N/second|minute|hour|day."),
    Setting(
        "PRIVACY_RETENTION",
        "事業の終了後5年間",
        "How long the support office keeps a proposal and its contact details, in the office's own words; "
        "the form's 個人情報の取扱い notice shows it as the office's rule. Set it to what the office has "
        "decided before going live: kyodo-match deletes nothing by itself.",
    ),
    Setting("TOP_K", 5, "Suggestions stored per proposal.", int),
    Setting(
        "TARGET_NEW_PROJECTS",
        15,
        "新たな協働事業 to launch in the plan period, counted on the dashboard by 協定締結日 "
        "(地域再生計画: 15 by the end of FY2010, 平成22年度末).",
        int,
    ),
    Setting(
        "PLAN_START",
        "2008-04-01",
        "First day of the plan period (YYYY-MM-DD). The 地域再生計画 runs from its 認定の日, which the "
        "seed does not give; the default is the first day of FY2008 (平成20年度).",
    ),
    Setting("PLAN_END", "2011-03-31", "Last day of the plan period (地域再生計画: 平成23年3月末), YYYY-MM-DD."),
    Setting("OPINION_DUE_DAYS", 14, "Days a department has to answer an opinion request (所見照会) by default.", int),
    Setting(
        "OPINION_LINK_DAYS",
        30,
        "Days the link in an opinion request's e-mail stays valid (signed, one request, answerable once).",
        int,
    ),
    Setting(
        "SUPPORT_OFFICE_CONTACT",
        "市民活動支援室",
        "The support office's contact (name, telephone, e-mail) shown on the NPO's status page and in e-mails.",
    ),
    Setting(
        "PUBLIC_URL",
        "",
        "Address the links in e-mails start with, e.g. https://kyodo.example.lg.jp. Default: "
        "http://127.0.0.1:5000 (kyodo serve's own address).",
    ),
    Setting(
        "MAIL_SERVER",
        "",
        "SMTP server for e-mail. Empty: each message is written to the log and to "
        "instance/outbox/ as an .eml file instead of being sent.",
    ),
    Setting("MAIL_PORT", 25, "SMTP port (587 with MAIL_USE_TLS).", int),
    Setting("MAIL_USE_TLS", False, "Use STARTTLS on the SMTP connection.", bool),
    Setting("MAIL_USERNAME", "", "SMTP user name (empty: no login)."),
    Setting("MAIL_PASSWORD", "", "SMTP password."),
    Setting("MAIL_DEFAULT_SENDER", "kyodo-match@localhost", "From address of every message."),
    Setting("MAX_CONTENT_LENGTH", 1_000_000, "Largest request body accepted, in bytes (larger: HTTP 413).", int),
    Setting(
        "MAX_UPLOAD_LENGTH",
        20_000_000,
        "Largest spreadsheet a coordinator may upload at /programs/import, in bytes (larger: HTTP 413).",
        int,
    ),
    Setting(
        "IMPORT_MAX_ROWS",
        DEFAULT_LIMITS.max_rows,
        "Rows under the header an imported file may have (programs, キーワード, departments, proposals; "
        "the upload pages and the kyodo commands). More: the file is refused before anything is stored.",
        int,
    ),
    Setting(
        "IMPORT_MAX_BYTES",
        DEFAULT_LIMITS.max_bytes,
        "Largest imported file once expanded, in bytes: a CSV's or JSONL's size, an XLSX's unpacked XML "
        "(checked from the zip's directory before it is read: a zip bomb is refused at once). Larger: refused.",
        int,
    ),
    Setting(
        "IMPORT_BACKGROUND_BYTES",
        1_000_000,
        "A program list uploaded at /programs/import larger than this, in bytes, is imported by the "
        "worker while a page shows its progress; a smaller one at once, in the request (about a second).",
        int,
    ),
    Setting("PAGE_SIZE", 25, "Rows per page in the review queue and lists.", int),
    Setting(
        "RATELIMIT_STORAGE_URI",
        "memory://",
        "Where the rate limits' counts (submissions, logins) and the receipt page's one-time "
        "status link are kept: memory:// in the process (kyodo serve, or gunicorn with one worker; "
        "with more workers the app refuses to start), or redis://host:6379 (needs the extra "
        "kyodo-match[redis]): one count for every worker, kept across restarts.",
    ),
    Setting(
        "PROXY_COUNT",
        0,
        "Reverse proxies in front of the app whose X-Forwarded-For is trusted for the "
        "client address (0: use the connection's address).",
        int,
    ),
    Setting("SESSION_COOKIE_SECURE", False, "Send the session cookie over HTTPS only (set true behind TLS).", bool),
    Setting(
        "LOGIN_RATE_LIMIT",
        "5/15 minutes",
        "Failed logins allowed per user name in a moving window (N/[n ]second|minute|hour|day); "
        "past it, logins with that name get HTTP 429, even with the right password (docs/accounts.md).",
    ),
    Setting(
        "LOGIN_ADDRESS_RATE_LIMIT",
        "5/15 minutes",
        "Failed logins allowed per client address, as LOGIN_RATE_LIMIT. Behind one office NAT every "
        "coordinator shares the address: raise it there. Counts are kept in RATELIMIT_STORAGE_URI.",
    ),
    Setting(
        "MATCH_MODE",
        "auto",
        "How the rematch and online matching rank programs: lexical (TF-IDF alone), semantic "
        "(TF-IDF fused with e5 embeddings, needs the extra kyodo-match[semantic]) or auto "
        "(semantic when the extra is installed and its model verifies, else lexical). When "
        "semantic is unavailable the engine logs one line and runs lexical.",
        choices=MATCH_MODES,
    ),
    Setting(
        "QUEUE_URL",
        "",
        "The background job queue (huey, docs/jobs.md) that kyodo worker consumes: "
        "redis://host:6379/0 in production (needs the extra kyodo-match[redis]), or "
        "sqlite:///path. Empty: the SQLite file jobs.sqlite3 in the instance folder (no server needed; "
        "the web app and the worker must share that folder).",
    ),
    Setting(
        "REMATCH_AT",
        "02:30",
        "When the worker runs the nightly rematch, HH:MM in Japan time (JST). A rematch already "
        "queued by an edit at that time is not run twice.",
    ),
)

ENV_PREFIX = "KYODO_"


def parse_value(setting: Setting, raw: str) -> Any:
    """Convert an environment string to the setting's type; ValueError if it cannot."""
    if setting.type is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{ENV_PREFIX}{setting.name}: expected true or false, got {raw!r}")
    if setting.type is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{setting.name}: expected a number, got {raw!r}") from None
    if setting.choices and raw not in setting.choices:
        raise ValueError(f"{ENV_PREFIX}{setting.name}: expected one of {', '.join(setting.choices)}, got {raw!r}")
    return raw


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(ENV_PREFIX + setting.name)
        if raw is not None:
            values[setting.name] = parse_value(setting, raw)
    return values


def instance_path(environ: dict[str, str] | None = None) -> str:
    environ = dict(os.environ if environ is None else environ)
    return os.path.abspath(environ.get(ENV_PREFIX + "INSTANCE_PATH") or "instance")


def markdown_table() -> str:
    """The settings as the Markdown table of docs/settings.md."""
    lines = ["| environment variable | default | what it does |", "|---|---|---|"]
    for s in SETTINGS:
        default = "(see text)" if s.default is None else f"`{s.default}`"
        lines.append(f"| `{ENV_PREFIX}{s.name}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"



def settings_document() -> str:
    """The whole of docs/settings.md."""
    return (
        "# Settings\n\n"
        "Each setting is read, later ones winning, from its default, the instance folder's "
        "`config.py` (as `NAME = value`), the environment variable below and, in tests, "
        "the dict given to `create_app`. Generated by `kyodo settings`; "
        "`tests/test_settings.py` fails when this file and `web/settings.py` disagree.\n\n"
        + markdown_table()
    )
