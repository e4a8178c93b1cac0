"""Acknowledged means committed: kill -9 the real server mid-load and count what survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
from sqlalchemy import func, select

from tests.conftest import free_port
from tests.factories import make_source
from threadline.storage import Database
from threadline.storage.models import Event


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def test_killing_the_server_mid_load_loses_no_acknowledged_event(database_url: str, db: Database) -> None:
    key = make_source(db).write_key
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "THREADLINE_DATABASE_URL": database_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=url, auth=(key, ""), timeout=10) as client:
            while not stop.is_set():
                ids = [f"w{worker}-{uuid.uuid4().hex}" for _ in range(50)]
                batch = [
                    {"type": "track", "event": "Load", "userId": f"user-{n % 97}", "messageId": m}
                    for n, m in enumerate(ids)
                ]
                try:
                    response = client.post("/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(ids)

    try:
        _wait_healthy(url, server)
        workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 1500 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
        if server.stderr:
            server.stderr.close()

    assert len(acknowledged) >= 1500
    with db.read() as session:
        stored = set(session.scalars(select(Event.message_id)))
        total = session.scalar(select(func.count()).select_from(Event))
    assert set(acknowledged) <= stored
    # Nothing stored twice, and at most the in-flight batches beyond what was acknowledged.
    assert total == len(stored)
