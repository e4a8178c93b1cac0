"""REST: the caller's own personal API tokens (list, create, revoke).

Only ever the caller's own: another user's token ID answers 404, the same as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from threadline.accounts import TokenInfo, issue_token, list_tokens, revoke_token
from threadline.api.deps import CurrentUser, DatabaseDep

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="A label to recognise the token by.")


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _public(token: TokenInfo) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": _utc(token.created_at),
        "last_used_at": _utc(token.last_used_at),
    }


@router.get("", summary="Your personal API tokens (never their secret)")
def get_tokens(db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    return {"tokens": [_public(t) for t in list_tokens(db, user.id)]}


@router.post("", status_code=201, summary="Create a personal API token; its secret is in this answer only")
def post_token(body: TokenCreate, request: Request, db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    made = issue_token(db, user.id, body.name, now=request.app.state.clock())
    return {**_public(made.info), "token": made.secret}


@router.delete("/{token_id}", status_code=204, summary="Revoke one of your tokens; it is refused at once")
def delete_token(token_id: int, request: Request, db: DatabaseDep, user: CurrentUser) -> Response:
    revoke_token(db, token_id, now=request.app.state.clock(), user_id=user.id)
    return Response(status_code=204)
