"""Ingestion: sources and write keys, Segment Spec messages, the quarantine, the write path, imports."""

from threadline.ingest.customer_events import attachment_of, record_customer_event
from threadline.ingest.importer import ImportReport, import_file, load_mapping
from threadline.ingest.live import LiveFeed, Subscription, live_feed
from threadline.ingest.messages import MESSAGE_TYPES, InvalidMessage, parse_time
from threadline.ingest.pipeline import IngestResult, Rejection, Submission, ingest, prepare, store
from threadline.ingest.quarantine import QuarantineEntry, list_quarantine, quarantine_raw
from threadline.ingest.sources import (
    SourceActivity,
    SourceInfo,
    WriteKeys,
    activate_source,
    create_source,
    get_source,
    internal_source,
    list_sources,
    revoke_source,
    rotate_write_key,
    source_activity,
    source_quarantine,
)
from threadline.ingest.writer import IngestWriter

__all__ = [
    "MESSAGE_TYPES",
    "ImportReport",
    "IngestResult",
    "IngestWriter",
    "InvalidMessage",
    "LiveFeed",
    "QuarantineEntry",
    "Rejection",
    "SourceActivity",
    "SourceInfo",
    "Submission",
    "Subscription",
    "WriteKeys",
    "activate_source",
    "attachment_of",
    "create_source",
    "get_source",
    "import_file",
    "ingest",
    "internal_source",
    "list_quarantine",
    "list_sources",
    "live_feed",
    "load_mapping",
    "parse_time",
    "prepare",
    "quarantine_raw",
    "record_customer_event",
    "revoke_source",
    "rotate_write_key",
    "source_activity",
    "source_quarantine",
    "store",
]
