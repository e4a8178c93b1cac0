"""Job kinds: what a job of each kind runs.

A handler is `handler(db, settings, payload, clock)`; it may answer counts (never personal data) that
the worker logs with the outcome. A job can run more than once (its worker stopped half-way, it failed
and is retried), so a handler must be safe to run again.

The built-in handlers import the package that does the work only when a job of their kind runs: a
worker starts without loading, say, the resolver's DuckDB and Splink, and a package that queues jobs
of its own can import threadline.jobs without an import cycle. A capability with background work adds
its kind to `_KINDS` (or calls `register` when it is imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from threadline.clock import Clock
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.jobs.queue import prune_finished
from threadline.storage import Database

Handler = Callable[[Database, Settings, dict[str, Any], Clock], Mapping[str, int] | None]


def resolve(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """Batch identity resolution with the workspace's thresholds (`threadline resolve`)."""
    from threadline.resolution import run_resolution

    run = run_resolution(db, now=clock)
    return {"run": run.id, "profiles": run.profiles, "merged": run.merged, "queued": run.queued}


def prune_jobs(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """Delete jobs that finished more than THREADLINE_JOBS_KEEP_DAYS ago."""
    days = int(payload.get("keep_days", settings.jobs_keep_days))
    if days <= 0:
        return {"deleted": 0}
    return {"deleted": prune_finished(db, before=clock() - timedelta(days=days))}


def privacy_retention(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Remove what the workspace's retention policy says has expired; answers rows removed per class."""
    from threadline.privacy import apply_retention

    # Someone's "run now" names them (an ID, no personal data); the daily run names no one.
    requested_by = payload.get("requested_by")
    report = apply_retention(
        db,
        now=clock(),
        via=str(payload.get("via", "worker")),
        requested_by=requested_by if isinstance(requested_by, int) else None,
    )
    return report.counts()


def privacy_request_reminders(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Log a reminder on every open data subject request due within a week (privacy/requests.py)."""
    from threadline.privacy import remind_due

    return {"reminded": len(remind_due(db, now=clock()))}


def messaging_send(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Send one queued outbound message, checking consent again (threadline.messaging); answers its
    outcome (`{"sent": 1}`). Raises DeliveryDeferred, so the job is retried, when the relay may take
    it later."""
    from threadline.messaging import deliver_message

    return {deliver_message(db, settings, int(payload["message_id"]), clock=clock): 1}


def analytics_scores(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Refit CLV and churn risk and rewrite their per-customer scores (threadline.analytics); a payload
    may name other purchase events (`purchase_events`, `value_keys`). Answers customers scored."""
    from threadline.analytics import PurchaseRule, ScoreSettings, refresh_scores

    chosen = ScoreSettings(purchases=PurchaseRule.from_payload(payload))
    return refresh_scores(db, now=clock(), settings=chosen)


def analytics_report_emails(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Email scheduled Insight reports whose weekday and hour have come (threadline.analytics)."""
    from threadline.analytics import send_scheduled_reports

    return send_scheduled_reports(db, settings, now=clock())


def analytics_rollups(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Add the events since the last run to the dashboards' daily rollups (threadline.analytics)."""
    from threadline.analytics import refresh_rollups

    return refresh_rollups(db, now=clock()).counts()


def service_sla(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """SLA clocks (threadline.service): policies for new conversations, ok -> warning -> breached,
    breach events on the timeline."""
    from threadline.service import check_slas

    return check_slas(db, settings, now=clock())


def service_surveys(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """The CSAT (and CES) survey for each conversation resolved since the last run (threadline.service)."""
    from threadline.service import send_due_surveys

    return send_due_surveys(db, settings, now=clock())


def service_nps(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """The NPS question to customers served in the last THREADLINE_NPS_EVERY_DAYS days, not yet asked."""
    from threadline.service import send_nps_surveys

    return send_nps_surveys(db, settings, now=clock())


def service_weakest_link(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Flag customers with two bad experiences at risk (threadline.service): one customer when the
    payload names one (after a survey answer or a breach), else everyone with a bad experience."""
    from threadline.service import evaluate_all, evaluate_customer

    if payload.get("profile_id"):
        return {"at_risk": int(evaluate_customer(db, settings, str(payload["profile_id"]), now=clock()))}
    return evaluate_all(db, settings, now=clock())


def analytics_recommendations(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Refit the item-item recommender and rewrite every customer's top 10 (threadline.analytics)."""
    from threadline.analytics import refresh_recommendations

    return refresh_recommendations(db, now=clock())


def analytics_sentiment(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Score the sentiment of events with free text not scored yet (threadline.analytics)."""
    from threadline.analytics import score_new_events

    return score_new_events(db, now=clock())


def loyalty_earn(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Credit points for the events since the last run (threadline.loyalty); safe to run again."""
    from threadline.loyalty import earn_points

    return earn_points(db, settings, now=clock()).counts()


def loyalty_expire(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Expire points past their expiry (FIFO) and re-evaluate tiers (threadline.loyalty)."""
    from threadline.loyalty import expire_points

    return expire_points(db, settings, now=clock()).counts()


def segments_recompute(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Recompute one segment (`segment_id`) or every active one, with enter and exit events."""
    from threadline.segments import recompute, recompute_all

    if payload.get("segment_id") is not None:
        return recompute(db, int(payload["segment_id"]), now=clock(), settings=settings).counts()
    return recompute_all(db, now=clock(), settings=settings)


def segments_refresh(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Re-evaluate the customers an ingestion batch touched (`profile_ids`) against active segments."""
    from threadline.segments import refresh

    return refresh(db, [str(p) for p in payload.get("profile_ids", [])], now=clock(), settings=settings)


def sales_pool(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """Return accounts past the pool rules to the pool, audited, on the timeline (threadline.sales)."""
    from threadline.sales import return_neglected_accounts

    return return_neglected_accounts(db, settings, now=clock())


def sales_digest(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Email each user their day once, in their morning (threadline.sales)."""
    from threadline.sales import send_digests

    return send_digests(db, settings, now=clock())


def journeys_run(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Enrol customers from new events and schedules, then run due journey steps (threadline.journeys)."""
    from threadline.journeys import run_journeys

    return run_journeys(db, settings, now=clock())


def destinations_deliver(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Send queued deliveries to destinations (webhooks); failures get a follow-up job with their own
    backoff (threadline.destinations), so this job itself only fails on a database error."""
    from threadline.destinations import deliver

    return deliver(db, settings, payload.get("deliveries", []), clock=clock)


_KINDS: dict[str, Handler] = {
    "resolve": resolve,
    "prune-jobs": prune_jobs,
    "privacy.retention": privacy_retention,
    "privacy.request-reminders": privacy_request_reminders,
    "messaging.send": messaging_send,
    "analytics.scores": analytics_scores,
    "analytics.report-emails": analytics_report_emails,
    "analytics.rollups": analytics_rollups,
    "segments.recompute": segments_recompute,
    "segments.refresh": segments_refresh,
    "analytics.recommendations": analytics_recommendations,
    "analytics.sentiment": analytics_sentiment,
    "service.sla": service_sla,
    "service.surveys": service_surveys,
    "service.nps": service_nps,
    "service.weakest-link": service_weakest_link,
    "loyalty.earn": loyalty_earn,
    "loyalty.expire": loyalty_expire,
    "sales.pool": sales_pool,
    "sales.digest": sales_digest,
    "journeys.run": journeys_run,
    "destinations.deliver": destinations_deliver,
}


def register(kind: str, handler: Handler) -> None:
    _KINDS[kind] = handler


def handlers() -> dict[str, Handler]:
    """Every kind this process can run, with its handler."""
    return dict(_KINDS)


def check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise Invalid(f"kind: must be one of {', '.join(sorted(_KINDS))}", details={"field": "kind"})
    return kind
