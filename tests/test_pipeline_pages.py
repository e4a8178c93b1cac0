"""Settings → Pipelines: an admin makes and reshapes deal pipelines on a page (stages in the order of
their positions, win probabilities), through the same checks as the REST API; a stage deals are in stays;
an unused pipeline can be removed, the default one not; other roles are refused."""

from __future__ import annotations

import httpx

from tests.factories import SYSTEM, make_token
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_user
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.sales import create_record, list_pipelines
from threadline.storage import Database


def stage_rows(*rows: tuple[str, str, str]) -> dict[str, list[str]]:
    return {
        "position": [r[0] for r in rows],
        "stage_name": [r[1] for r in rows],
        "probability": [r[2] for r in rows],
        "key": ["" for _ in rows],
    }


def test_an_admin_shapes_pipelines_on_the_page(http: httpx.Client, db: Database, settings: Settings) -> None:
    make_token(db, "admin@example.com", "admin")
    create_user(db, "rep@example.com", "agent", "correct horse battery", now=utcnow())
    sign_in(http)
    page = http.get("/settings/pipelines")
    assert page.status_code == 200 and "Prospecting" in page.text  # the default pipeline, made on first use
    csrf = csrf_of(page.text)
    made = http.post(
        "/settings/pipelines",
        data={"csrf": csrf, "name": "Renewals", **stage_rows(("2", "Quote", "60"), ("1", "Contacted", "20"))},
    )
    assert made.status_code == 303, made.text
    renewals = next(p for p in list_pipelines(db) if p.name == "Renewals")
    assert [(s["name"], s["probability"]) for s in renewals.stages] == [("Contacted", 20), ("Quote", 60)]

    bad = http.post(
        f"/settings/pipelines/{renewals.id}",
        data={
            "csrf": csrf,
            "name": "Renewals",
            **stage_rows(("1", "Contacted", "20"), ("2", "Quote", "lots")),
        },
    )
    assert bad.status_code == 400 and "stages[1].probability" in bad.text and 'value="lots"' in bad.text

    account = create_record(db, SYSTEM, "account", {"name": "Acme"}, settings=settings, now=utcnow())
    create_record(
        db, SYSTEM, "deal",
        {"name": "Acme renewal", "account_id": account["id"], "pipeline_id": renewals.id, "stage": "quote"},
        settings=settings, now=utcnow(),
    )  # fmt: skip
    dropped = http.post(
        f"/settings/pipelines/{renewals.id}",
        data={"csrf": csrf, "name": "Renewals", **stage_rows(("1", "Contacted", "20"), ("2", "", ""))},
    )
    assert dropped.status_code == 400 and "deals are still in stage" in dropped.text
    assert http.post(f"/settings/pipelines/{renewals.id}/delete", data={"csrf": csrf}).status_code == 409

    spare = http.post(
        "/settings/pipelines", data={"csrf": csrf, "name": "Spare", **stage_rows(("1", "A", "5"))}
    )
    assert spare.status_code == 303
    spare_id = next(p.id for p in list_pipelines(db) if p.name == "Spare")
    assert http.post(f"/settings/pipelines/{spare_id}/delete", data={"csrf": csrf}).status_code == 303
    default_id = next(p.id for p in list_pipelines(db) if p.is_default)
    refused = http.post(f"/settings/pipelines/{default_id}/delete", data={"csrf": csrf})
    assert refused.status_code == 409 and "default pipeline stays" in refused.text
    assert {p.name for p in list_pipelines(db)} == {"Sales", "Renewals"}

    http.cookies.clear()
    sign_in(http, "rep@example.com")
    assert http.get("/settings/pipelines").status_code == 403
    token = csrf_of(http.get("/customers").text)
    assert (
        http.post(
            "/settings/pipelines", data={"csrf": token, "name": "X", **stage_rows(("1", "A", "5"))}
        ).status_code
        == 403
    )
