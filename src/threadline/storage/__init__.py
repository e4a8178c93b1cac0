"""Storage: engines, sessions, tables and migrations. Domain packages build on this and nothing above it."""

from threadline.storage.bulk import insert_rows
from threadline.storage.engine import Database, build_engine, is_sqlite, normalise_url
from threadline.storage.migrate import upgrade

__all__ = ["Database", "build_engine", "insert_rows", "is_sqlite", "normalise_url", "upgrade"]
