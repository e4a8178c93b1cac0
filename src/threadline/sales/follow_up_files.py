"""Files on a follow-up (a signed quote, a photo from a visit): attached, listed and read back within the
follow-up's scope (the scope of its lead, account, contact, deal or customer).

Kept in the database beside the follow-up, as a conversation's attachments are: a backup, the person's
export and their erasure see them (privacy/personal_data.py); a deleted follow-up takes its files along.
Limits: THREADLINE_MAX_FOLLOW_UP_FILE_BYTES per file, MAX_FILES per follow-up; a refused file names the
field and stores nothing.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.sales.follow_ups import follow_up_in_scope
from threadline.storage import Database
from threadline.storage.models import FollowUpFile

MAX_FILES = 10
MAX_NAME = 300


@dataclass(frozen=True, slots=True)
class FileView:
    id: int
    follow_up_id: int
    filename: str
    content_type: str
    size: int
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "follow_up_id": self.follow_up_id,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "created_at": self.created_at.isoformat() + "Z",
        }


def _view(row: FollowUpFile) -> FileView:
    return FileView(row.id, row.follow_up_id, row.filename, row.content_type, row.size, row.created_at)


def attach_file(
    db: Database,
    settings: Settings,
    viewer: Viewer,
    follow_up_id: int,
    *,
    filename: str,
    content_type: str | None,
    data: bytes,
    now: datetime,
) -> FileView:
    if not viewer.can("edit"):
        raise Forbidden("attaching a file needs the edit permission")
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()  # no client paths
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"file: a file name of 1 to {MAX_NAME} characters", details={"field": "file"})
    if not data:
        raise Invalid("file: the file is empty", details={"field": "file"})
    if len(data) > settings.max_follow_up_file_bytes:
        raise Invalid(
            f"file: {len(data):,} bytes is over the limit of {settings.max_follow_up_file_bytes:,}",
            details={"field": "file"},
        )
    kind = (content_type or "").strip() or mimetypes.guess_type(name)[0] or "application/octet-stream"
    with db.write() as session:
        follow_up = follow_up_in_scope(session, viewer, follow_up_id, write=True)
        count = session.scalar(
            select(func.count()).select_from(FollowUpFile).where(FollowUpFile.follow_up_id == follow_up_id)
        )
        if (count or 0) >= MAX_FILES:
            raise Invalid(f"file: a follow-up holds at most {MAX_FILES} files", details={"field": "file"})
        row = FollowUpFile(
            follow_up_id=follow_up_id,
            profile_id=follow_up.profile_id,
            filename=name,
            content_type=kind[:150],
            size=len(data),
            data=data,
            uploaded_by=viewer.user_id,
            created_at=now,
        )
        session.add(row)
        session.flush()
        return _view(row)


def follow_up_files(db: Database, viewer: Viewer, follow_up_ids: list[int]) -> dict[int, list[FileView]]:
    """The files of the follow-ups the viewer may see, by follow-up (no contents)."""
    out: dict[int, list[FileView]] = {}
    with db.read() as session:
        visible = []
        for follow_up_id in follow_up_ids:
            try:
                follow_up_in_scope(session, viewer, follow_up_id, write=False)
            except NotFound:
                continue
            visible.append(follow_up_id)
        rows = session.scalars(
            select(FollowUpFile)
            .where(FollowUpFile.follow_up_id.in_(visible))
            .order_by(FollowUpFile.follow_up_id, FollowUpFile.id)
        )
        for row in rows:
            out.setdefault(row.follow_up_id, []).append(_view(row))
    return out


def read_file(db: Database, viewer: Viewer, follow_up_id: int, file_id: int) -> tuple[FileView, bytes]:
    """A file's contents for download; NotFound outside the viewer's scope, as for a missing one."""
    with db.read() as session:
        follow_up_in_scope(session, viewer, follow_up_id, write=False)
        row = session.get(FollowUpFile, file_id)
        if row is None or row.follow_up_id != follow_up_id:
            raise NotFound(f"file {file_id} does not exist")
        return _view(row), bytes(row.data)
