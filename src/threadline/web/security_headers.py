"""Security headers on every response: pages, the REST and ingestion APIs, static files.

The workspace's pages load only their own files (static/: htmx, app.css, the page scripts) and have no
inline script, so scripts are limited to 'self'. Styles allow 'unsafe-inline': templates set computed
widths and heights in `style` attributes (charts in sources.html and duplicate.html) and htmx adds its
indicator style; an injected style cannot run code. The API docs (/docs, /redoc) are FastAPI's pages,
which load Swagger UI and ReDoc from a CDN with an inline script: they get a policy of their own.

Nothing here limits who may *load* a response: the web tracker (/static/threadline.js) and its settings
(/cdn/...) are fetched by customers' own websites, and CORS (app.py) governs that, unchanged.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = ("/docs", "/redoc")
COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors 'none' for browsers without CSP level 2
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
# Two years, as the HSTS preload list asks; sent only over HTTPS (a plain-HTTP answer cannot set it,
# and a laptop on http://localhost must not be told to insist on HTTPS).
HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeaders:
    """Pure ASGI middleware (no BaseHTTPMiddleware): streamed responses and the live feed pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = DOCS_POLICY if path.startswith(DOCS_PATHS) else PAGE_POLICY
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON:
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", policy)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
