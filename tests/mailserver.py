"""A real SMTP server on loopback for the mail tests (aiosmtpd), never a mocked
sender: ``from mailserver import smtp_server`` makes the fixture visible to a
test module. The server can be stopped and started again on its port (an
outage), and can refuse recipients (a permanent error)."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A loopback port nothing listens on (the OS picked it; we closed it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Collector:
    """The aiosmtpd handler: keeps every message; refuses recipients starting with ``refuse``."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SmtpServer:
    """One port for the test; ``start``/``stop`` any number of times."""

    def __init__(self, port: int | None = None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.handler = Collector()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        # A Controller does not restart once stopped: a new one on the same port.
        self._controller = Controller(self.handler, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return [r.message for r in self.handler.received]

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def count_by_message_id(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]).strip() for m in self.messages)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server on a free loopback port, stopped after the test."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A port with nothing listening yet; ``start()`` brings the server up on it."""
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()
