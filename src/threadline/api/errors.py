"""Every error the HTTP surface returns: `{"error": {"code", "message", "details"}}` with a telling 4xx."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from threadline.api.responses import JSONResponse
from threadline.errors import Conflict, Forbidden, Invalid, NotFound, ThreadlineError, Unauthorised

STATUS = {Invalid: 400, Unauthorised: 401, Forbidden: 403, NotFound: 404, Conflict: 409}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None, **extra: Any) -> JSONResponse:
    return JSONResponse({**extra, **error_body(code, message, details)}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(ThreadlineError)
    async def _domain(_: Request, error: ThreadlineError) -> JSONResponse:
        status = next((s for cls, s in STATUS.items() if isinstance(error, cls)), 400)
        return error_response(status, error.code, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("query", "body", "path")),
                "reason": e["msg"],
            }
            for e in error.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details)
        return error_response(400, "invalid", message, details)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        codes = {
            401: "unauthorised",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }
        response = error_response(error.status_code, codes.get(error.status_code, "error"), str(error.detail))
        if error.headers:
            response.headers.update(error.headers)
        return response
