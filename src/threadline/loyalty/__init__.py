"""Loyalty: the program (earn rules, expiry, tiers), the points ledger fed by events from every channel,
redemptions and adjustments, expiry, and tier changes on the timeline (docs/loyalty.md)."""

from threadline.loyalty.earning import EarnRun, earn_points
from threadline.loyalty.expiry import ExpireRun, expire_points, outstanding
from threadline.loyalty.ledger import LedgerChange, adjust, loyalty_view, redeem
from threadline.loyalty.program import (
    DEFAULT_PROGRAM,
    POINTS_EARNED,
    PROGRAM_KEY,
    TIER_BASES,
    TIER_CHANGED,
    ChannelBonus,
    EarnRule,
    Program,
    ProgramSetting,
    Tier,
    check_program,
    get_program,
    set_program,
)
from threadline.loyalty.standing import Standing, TierChange

__all__ = [
    "DEFAULT_PROGRAM",
    "POINTS_EARNED",
    "PROGRAM_KEY",
    "TIER_BASES",
    "TIER_CHANGED",
    "ChannelBonus",
    "EarnRule",
    "EarnRun",
    "ExpireRun",
    "LedgerChange",
    "Program",
    "ProgramSetting",
    "Standing",
    "Tier",
    "TierChange",
    "adjust",
    "check_program",
    "earn_points",
    "expire_points",
    "get_program",
    "loyalty_view",
    "outstanding",
    "redeem",
    "set_program",
]
