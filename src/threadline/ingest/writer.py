"""Group commit for the HTTP ingestion API.

Concurrent requests hand their validated messages to one writer thread, which stores whatever has
queued up since its last commit in a single transaction. Under load this turns many small commits
(each with its own identity lookups, profile updates and WAL write) into a few large ones; with one
client it adds nothing, because the queue holds just that request. A request is answered only after
the transaction holding its messages has committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from threadline.config import Settings
from threadline.ingest.pipeline import IngestResult, Submission, store
from threadline.storage import Database

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    submission: Submission
    future: Future[IngestResult] = field(default_factory=Future)


class IngestWriter:
    def __init__(self, db: Database, settings: Settings, *, max_messages: int = 2000) -> None:
        self.db = db
        self.settings = settings
        self.max_messages = max_messages
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, submission: Submission) -> Future[IngestResult]:
        job = _Job(submission)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="threadline-ingest-writer", daemon=True
                )
                self._thread.start()
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group, size, stopping = [job], job.submission.count, False
            while size < self.max_messages:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                size += more.submission.count
            self._store(group)
            if stopping:
                return

    def _store(self, group: list[_Job]) -> None:
        try:
            results = store(self.db, [job.submission for job in group], settings=self.settings)
        except Exception as error:
            if len(group) == 1:
                group[0].future.set_exception(error)
                return
            # One request's failure must not fail its neighbours: store them one by one.
            log.warning("group of %d submissions failed (%s); storing them one by one", len(group), error)
            for job in group:
                self._store([job])
            return
        for job, result in zip(group, results, strict=True):
            job.future.set_result(result)
