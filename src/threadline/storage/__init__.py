"""Storage: engines, sessions, tables and migrations. Domain packages build on this and nothing above it."""

from threadline.storage.bulk import insert_rows
from threadline.storage.engine import Database, build_engine, is_sqlite, normalise_url
from threadline.storage.migrate import upgrade
from threadline.storage.search_objects import PHONE_FTS, PROFILE_NAME_FTS, is_search_object
from threadline.storage.workspace_settings import put_setting, read_setting

__all__ = [
    "PHONE_FTS",
    "PROFILE_NAME_FTS",
    "Database",
    "build_engine",
    "insert_rows",
    "is_search_object",
    "is_sqlite",
    "normalise_url",
    "put_setting",
    "read_setting",
    "upgrade",
]
