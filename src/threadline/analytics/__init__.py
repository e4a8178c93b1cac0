"""Insight: KPIs and dashboards, the consistency report, CLV, churn risk, recommendations, sentiment.

Models write their per-customer results to `profile_scores` (one row per customer and score), sentiment
to `event_sentiments`; pages and segments read them there.
"""

# CLV and churn risk (docs/analytics.md): the models, their daily run, and the scores they write.
from threadline.analytics.churn import ChurnDefinition, ChurnModel, NotEnoughHistory, score_churn, train_churn
from threadline.analytics.churn_features import FEATURES as CHURN_FEATURES
from threadline.analytics.churn_features import Activity, SurveyAnswer, churned, features_as_of
from threadline.analytics.clv import (
    BgNbd,
    GammaGamma,
    NotEnoughPurchases,
    customer_value,
    fit_bgnbd,
    fit_gamma_gamma,
)

# Dashboards, the consistency report and the customer portrait (docs/analytics.md): the Insight pages.
from threadline.analytics.consistency import ConsistencyReport, consistency_report
from threadline.analytics.dashboards import PAGES, filters_from, funnel_steps, page_datasets, report_datasets
from threadline.analytics.dataset import Dataset, dataset_csv, dataset_xlsx
from threadline.analytics.evaluation import Evaluation, Windows, evaluate_models
from threadline.analytics.portrait import PortraitRules, portrait_of
from threadline.analytics.portrait_snapshots import SNAPSHOT_NOTE
from threadline.analytics.purchases import Purchase, PurchaseRule, Summaries, read_purchases, summarise
from threadline.analytics.recommendations import (
    RECOMMENDATIONS,
    Recommendation,
    RecommendationSettings,
    popular_products,
    recommend_for,
    refresh_recommendations,
)

# Recommendations and sentiment (docs/analytics.md): next-best products, scored free text.
from threadline.analytics.report_emails import (
    REPORT_PAGES,
    ReportSchedule,
    delete_report_schedule,
    list_report_schedules,
    save_report_schedule,
    schedule_json,
    send_report,
    send_scheduled_reports,
)
from threadline.analytics.rollups import RollupRun, refresh_rollups, reset_rollups
from threadline.analytics.scope import InsightFilters
from threadline.analytics.score_runs import ScoreSettings, refresh_scores
from threadline.analytics.scores import (
    CHURN_RISK,
    CLV_12M,
    CLV_SCORES,
    EXPECTED_PURCHASES_12M,
    P_ALIVE,
    Score,
    ScoreView,
    profile_scores,
    replace_scores,
)
from threadline.analytics.sentiment import Sentiment, detect_language, score_new_events, score_texts
from threadline.analytics.sentiment_reads import (
    ChannelSentiment,
    EventScore,
    ScoredEvent,
    event_scores,
    message_scores,
    negative_events,
    sentiment_by_channel,
    sentiment_dataset,
)
from threadline.analytics.spend import SpendImport, import_spend

__all__ = [
    "CHURN_FEATURES",
    "CHURN_RISK",
    "CLV_12M",
    "CLV_SCORES",
    "EXPECTED_PURCHASES_12M",
    "PAGES",
    "P_ALIVE",
    "RECOMMENDATIONS",
    "REPORT_PAGES",
    "SNAPSHOT_NOTE",
    "Activity",
    "BgNbd",
    "ChannelSentiment",
    "ChurnDefinition",
    "ChurnModel",
    "ConsistencyReport",
    "Dataset",
    "Evaluation",
    "EventScore",
    "GammaGamma",
    "InsightFilters",
    "NotEnoughHistory",
    "NotEnoughPurchases",
    "PortraitRules",
    "Purchase",
    "PurchaseRule",
    "Recommendation",
    "RecommendationSettings",
    "ReportSchedule",
    "RollupRun",
    "Score",
    "ScoreSettings",
    "ScoreView",
    "ScoredEvent",
    "Sentiment",
    "SpendImport",
    "Summaries",
    "SurveyAnswer",
    "Windows",
    "churned",
    "consistency_report",
    "customer_value",
    "dataset_csv",
    "dataset_xlsx",
    "delete_report_schedule",
    "detect_language",
    "evaluate_models",
    "event_scores",
    "features_as_of",
    "filters_from",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "funnel_steps",
    "import_spend",
    "list_report_schedules",
    "message_scores",
    "negative_events",
    "page_datasets",
    "popular_products",
    "portrait_of",
    "profile_scores",
    "read_purchases",
    "recommend_for",
    "refresh_recommendations",
    "refresh_rollups",
    "refresh_scores",
    "replace_scores",
    "report_datasets",
    "reset_rollups",
    "save_report_schedule",
    "schedule_json",
    "score_churn",
    "score_new_events",
    "score_texts",
    "send_report",
    "send_scheduled_reports",
    "sentiment_by_channel",
    "sentiment_dataset",
    "summarise",
    "train_churn",
]
