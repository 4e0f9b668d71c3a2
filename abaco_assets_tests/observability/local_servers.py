"""Real servers on 127.0.0.1 for the alert and lineage routes: SMTP (aiosmtpd) and an HTTP sink."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpSink:
    """Answers every POST with ``status`` and keeps what it received (a Slack webhook / Marquez stand-in)."""

    status: int = 200
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HttpSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append(Received(self.path, dict(self.headers), body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpInbox:
    """aiosmtpd's Controller: a real SMTP server in a thread; ``messages`` are the parsed e-mails."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        inbox = self
        self.messages = []
        self.envelopes = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                inbox.envelopes.append(envelope)
                inbox.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpInbox":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
