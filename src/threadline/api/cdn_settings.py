"""Source settings for Segment's analytics.js (analytics-next), which Segment's CDN would otherwise serve.

analytics.js loaded from a snippet fetches `{cdn}/v1/projects/{writeKey}/settings` before it sends anything,
and its Segment.io destination posts where `integrations["Segment.io"].apiHost` says, with `apiKey` as the
`writeKey` in each body. Pointing `analytics._cdn` at Threadline therefore sends the events back here.
docs/tracking.md shows the snippet.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from threadline.api.errors import error_response
from threadline.api.responses import JSONResponse

router = APIRouter(tags=["ingestion"])


def source_settings(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """The least analytics.js needs: only the Segment.io destination, and no metrics sent to Segment."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "addBundledMetadata": False,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}}},
        "metrics": {"sampleRate": 0},
        "enabledMiddleware": {},
        "remotePlugins": [],
        "legacyVideoPluginsEnabled": False,
    }


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="analytics.js source settings (what Segment's CDN serves), pointing back at this server",
)
def get_source_settings(write_key: str, request: Request) -> JSONResponse:
    if request.app.state.write_keys.lookup(write_key) is None:
        return error_response(404, "not_found", "no active source has this write key")
    protocol, _, base = str(request.base_url).rstrip("/").partition("://")  # base_url keeps a root_path
    response = JSONResponse(source_settings(write_key, f"{base}/v1", protocol))
    # Short, so a revoked key stops being handed out soon; analytics.js fetches this on every page load.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
