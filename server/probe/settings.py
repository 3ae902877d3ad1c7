"""A campaign's probe settings: which order its candidates take, how much unlabeled objects
weigh. Stored in the campaign's settings (``probe_strategy``, ``probe_unlabeled_weight``,
validated by :class:`server.schemas.campaigns.CampaignSettingsSchema`); absent keys take the
defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml.probe import DEFAULT_STRATEGY, DEFAULT_UNLABELED_WEIGHT, STRATEGIES


@dataclass(frozen=True)
class ProbeCampaignSettings:
    strategy: str = DEFAULT_STRATEGY  # one of ml.probe.STRATEGIES
    unlabeled_weight: float = DEFAULT_UNLABELED_WEIGHT  # 0: no weak negatives

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> ProbeCampaignSettings:
        strategy = settings.get("probe_strategy") or DEFAULT_STRATEGY
        if strategy not in STRATEGIES:  # validated on write; an old value falls back
            strategy = DEFAULT_STRATEGY
        weight = settings.get("probe_unlabeled_weight")
        return cls(strategy, DEFAULT_UNLABELED_WEIGHT if weight is None else float(weight))
