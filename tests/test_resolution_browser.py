"""Issue 8's "done when" in a real Chromium: two demo customers who share no identifier are found by
`threadline resolve`, reviewed on the Duplicates page (evidence waterfall, keyboard), merged, explained
on the 360 page, and unmerged from it; the 360 page shows each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.factories import make_token
from tests.test_tracker_browser import CHROMIUM
from tests.test_workspace_browser import browser, sign_in  # noqa: F401  (the module's browser fixture)
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.demo import generate_demo
from threadline.resolution import Thresholds, list_candidates, run_resolution
from threadline.storage import Database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]


def test_a_steward_merges_a_demo_duplicate_then_undoes_it(
    browser: Any,  # noqa: F811  (the fixture imported above)
    server: LiveServer,
    db: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    from tests.factories import SYSTEM

    make_token(db, "admin@example.com", "admin")
    report = generate_demo(db, settings, customers=120, seed=7, locale="en_US", progress=False)
    assert report.fuzzy_duplicates >= 2
    # Nothing merges on its own here: every likely pair waits for the steward.
    run = run_resolution(db, now=utcnow, thresholds=Thresholds(auto_merge=1.0, review=0.8))
    assert run.queued >= 2
    candidates, _ = list_candidates(db, SYSTEM)
    top = candidates[0]

    page, errors = sign_in(browser, server, "admin@example.com", viewport={"width": 1280, "height": 900})
    page.click("header nav a[href='/duplicates']")
    page.wait_for_url("**/duplicates")
    assert page.locator("#queue table.list tbody tr").count() == run.queued
    page.keyboard.press("j")  # the first row, most likely first
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/duplicates/{top.id}")
    steps = page.locator(".waterfall li").count()
    assert steps == len(top.evidence["comparisons"]) + 2  # prior, each comparison, total
    page.screenshot(path=tmp_path / "duplicate-pair.png", full_page=True)
    page.keyboard.press("a")  # merge
    page.wait_for_url("**done=approve")

    from sqlalchemy import select

    from threadline.storage.models import MatchCandidate, Merge

    with db.read() as session:
        merge_id = session.scalar(select(MatchCandidate.merge_id).where(MatchCandidate.id == top.id))
        merge = session.get(Merge, merge_id)
        assert merge is not None and merge.trigger == "steward"
        survivor_id, merged_id = merge.survivor_id, merge.merged_id
    # The 360 page explains the merge: who decided, and why.
    page.goto(f"{server.url}/customers/{survivor_id}")
    assert page.locator("text=a data steward approved the match").first.is_visible()
    page.screenshot(path=tmp_path / "merged-360.png", full_page=True)
    # The merged-away customer's URL lands on the survivor.
    page.goto(f"{server.url}/customers/{merged_id}")
    assert survivor_id in page.url or page.locator(f"text={survivor_id}").count() >= 1
    # Undo it from the lineage: both customers are back, and the lineage says who split them.
    page.goto(f"{server.url}/customers/{survivor_id}")
    page.click(f'form[action$="/merges/{merge_id}/unmerge"] button')
    page.wait_for_load_state()
    assert page.locator(f'form[action$="/merges/{merge_id}/unmerge"]').count() == 0
    assert page.locator("text=Undone merges").count() == 1
    restored = page.goto(f"{server.url}/customers/{merged_id}")
    assert restored is not None and restored.status == 200 and page.url.endswith(merged_id)
    page.screenshot(path=tmp_path / "unmerged-360.png", full_page=True)
    assert errors == []
    page.context.close()
