"""`threadline smtp`: the inbound SMTP server alone (`threadline serve` runs it beside HTTP when
THREADLINE_SMTP_INBOUND_PORT is set)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from threadline.cli.common import console, one_line_errors, open_db
from threadline.cli.worker import log_to_stderr
from threadline.config import get_settings
from threadline.service import InboundMailServer


@one_line_errors
def smtp(
    host: str = typer.Option(None, help="Interface to listen on (default THREADLINE_SMTP_INBOUND_HOST)."),
    port: int = typer.Option(None, help="Port (default THREADLINE_SMTP_INBOUND_PORT, else 2525)."),
) -> None:
    """Receive customers' emails into conversations until stopped (SIGTERM or Ctrl-C)."""
    settings = get_settings()
    db = open_db()
    log_to_stderr()
    chosen = port or settings.smtp_inbound_port or 2525
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with InboundMailServer(db, settings, host=host, port=chosen) as server:
        accepted = ", ".join(settings.inbound_addresses) or "nobody (set THREADLINE_INBOUND_ADDRESSES)"
        console.print(f"inbound SMTP on {server.host}:{server.port}, accepting mail for {accepted}")
        stopped.wait()
    db.dispose()
