"""Ingestion: sources and write keys, Segment Spec messages, the quarantine, the write path, imports."""

from threadline.ingest.importer import ImportReport, import_file, load_mapping
from threadline.ingest.messages import MESSAGE_TYPES, InvalidMessage, parse_time
from threadline.ingest.pipeline import IngestResult, Rejection, Submission, ingest, prepare, store
from threadline.ingest.quarantine import QuarantineEntry, list_quarantine, quarantine_raw
from threadline.ingest.sources import SourceInfo, WriteKeys, create_source, get_source, list_sources
from threadline.ingest.writer import IngestWriter

__all__ = [
    "MESSAGE_TYPES",
    "ImportReport",
    "IngestResult",
    "IngestWriter",
    "InvalidMessage",
    "QuarantineEntry",
    "Rejection",
    "SourceInfo",
    "Submission",
    "WriteKeys",
    "create_source",
    "get_source",
    "import_file",
    "ingest",
    "list_quarantine",
    "list_sources",
    "load_mapping",
    "parse_time",
    "prepare",
    "quarantine_raw",
    "store",
]
