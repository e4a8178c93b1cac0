"""Domain errors. Domain code raises these; the api layer maps them to HTTP, the CLI to exit codes."""

from __future__ import annotations

from typing import Any


class ThreadlineError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ThreadlineError):
    code = "not_found"


class Invalid(ThreadlineError):
    code = "invalid"


class Conflict(ThreadlineError):
    code = "conflict"


class Unauthorised(ThreadlineError):
    code = "unauthorised"


class Forbidden(ThreadlineError):
    code = "forbidden"
