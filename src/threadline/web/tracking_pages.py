"""The public ends of email tracking (threadline.messaging.tracking): the open image and click redirects.

Neither needs a login: the signed token is the whole credential, as for unsubscribe links. The image
answers the same transparent GIF whatever the token, so it tells a stranger nothing; a click goes only
to a link the message itself holds.
"""

from __future__ import annotations

from contextlib import suppress

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.messaging import CLICKED, OPENED, PIXEL_GIF, InvalidToken, record_hit
from threadline.web.render import render

router = APIRouter(include_in_schema=False)
# Proxies and browsers must ask again for every open, and keep no copy of either answer.
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


@router.get("/email/open/{token}.gif")
def email_opened(request: Request, token: str) -> Response:
    state = request.app.state
    # A forged token gets the same image: a broken one in a customer's mail helps nobody.
    with suppress(InvalidToken):
        record_hit(state.db, state.settings, token, OPENED, now=state.clock())
    return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)


@router.get("/email/click/{token}")
def email_link_clicked(request: Request, token: str) -> Response:
    try:
        url = record_hit(
            request.app.state.db, request.app.state.settings, token, CLICKED, now=request.app.state.clock()
        )
    except InvalidToken:
        return render(request, "email_link_invalid.html", 400, user=None, reason="forged")
    if url is None:
        return render(request, "email_link_invalid.html", 404, user=None, reason="gone")
    return RedirectResponse(url, status_code=302, headers=NO_STORE)
