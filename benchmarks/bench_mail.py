"""The outbox's delivery against a bare smtplib loop, to the same SMTP server.

    .venv/bin/python benchmarks/bench_mail.py [--messages 500] [--rounds 3]

Starts aiosmtpd on loopback, queues ``--messages`` receipt messages in a fresh
SQLite instance and delivers them with ``web.mail.send_now`` (claim, render,
send, mark: two commits per message), in rounds of 50 as ``kyodo serve``'s
sender does. The baseline, in the same run, sends the same number of
pre-built messages over one smtplib connection with no database. Prints a
Markdown row: messages per second of each and the ratio outbox / bare.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailserver import SmtpServer  # noqa: E402
from sqlmodel import Session  # noqa: E402

from models.outbox import enqueue  # noqa: E402
from web import create_app  # noqa: E402
from web.db import dispose, get_engine  # noqa: E402
from web.mail import send_now  # noqa: E402


def outbox_rate(server: SmtpServer, n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"INSTANCE_PATH": folder, "SECRET_KEY": "bench" * 7, "MAIL_SERVER": server.host,
                          "MAIL_PORT": server.port, "MATCH_MODE": "lexical"})
        with Session(get_engine(app)) as session:
            for i in range(n):  # benchmark data, written here
                enqueue(session=session, kind="receipt", to=f"npo{i}@example.jp", secret=f"token{i:028d}",
                        context={"receipt_number": f"2026-{i:06d}", "title": "公園の清掃", "organization": "NPO",
                                 "representative": "山田"})
            session.commit()
        start = time.perf_counter()
        sent = 0
        while sent < n:
            sent += send_now(app).sent
        elapsed = time.perf_counter() - start
        dispose(app)
    return n / elapsed


def bare_rate(server: SmtpServer, n: int) -> float:
    messages = []
    for i in range(n):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "kyodo@localhost", f"npo{i}@example.jp", "受付"
        message.set_content("ご提案を受け付けました。\nhttp://127.0.0.1:5000/status/" + "x" * 32)
        messages.append(message)
    start = time.perf_counter()
    with smtplib.SMTP(server.host, server.port) as smtp:
        for message in messages:
            smtp.send_message(message)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = SmtpServer().start()
    try:
        outbox, bare = [], []
        for _ in range(args.rounds):
            outbox.append(outbox_rate(server, args.messages))
            bare.append(bare_rate(server, args.messages))
    finally:
        server.stop()
    o, b = statistics.median(outbox), statistics.median(bare)
    print("| messages | outbox (msg/s) | bare smtplib (msg/s) | outbox / bare |")
    print("|---|---|---|---|")
    print(f"| {args.messages} | {o:.0f} | {b:.0f} | {o / b:.2f} |")


if __name__ == "__main__":
    main()
