"""Batch identity resolution: profiles that share no identifier but are likely one person.

`run_resolution` reads live profiles, scores pairs with a Splink model (model.py, in DuckDB), keeps the
likely ones as match candidates, merges the sure ones and queues the rest for a data steward (queue.py).
"""

from threadline.resolution.decisions import (
    MERGED,
    OBSOLETE,
    PENDING,
    REJECTED,
    Thresholds,
    get_thresholds,
    set_thresholds,
)
from threadline.resolution.model import RECORD_COLUMNS, Evidence, ScoredPair, cluster, score_pairs
from threadline.resolution.queue import (
    BulkOutcome,
    Candidate,
    approve,
    decide_many,
    get_candidate,
    list_candidates,
    reject,
)
from threadline.resolution.records import read_profile_records, record_of
from threadline.resolution.runs import RunInfo, list_runs, resume_decisions, run_resolution

__all__ = [
    "MERGED",
    "OBSOLETE",
    "PENDING",
    "RECORD_COLUMNS",
    "REJECTED",
    "BulkOutcome",
    "Candidate",
    "Evidence",
    "RunInfo",
    "ScoredPair",
    "Thresholds",
    "approve",
    "cluster",
    "decide_many",
    "get_candidate",
    "get_thresholds",
    "list_candidates",
    "list_runs",
    "read_profile_records",
    "record_of",
    "reject",
    "resume_decisions",
    "run_resolution",
    "score_pairs",
    "set_thresholds",
]
