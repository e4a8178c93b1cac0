"""Insight: KPIs and dashboards, the consistency report, CLV, churn risk, recommendations, sentiment.

Models write their per-customer results to `profile_scores` (one row per customer and score), sentiment
to `event_sentiments`; pages and segments read them there.
"""
