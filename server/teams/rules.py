"""A campaign's team rules: hand-out and consensus, read from its settings with their defaults.

The settings are keys of the campaign's JSON ``settings`` (validated by
:class:`server.schemas.campaigns.CampaignSettingsSchema`); a key left out or null takes the
default below.

| key | default | meaning |
|---|---|---|
| ``handout`` | false | candidate pages are handed out (:mod:`server.teams.handout`) |
| ``overlap`` | 1 | how many labelers each object is handed to |
| ``handout_minutes`` | 30 | a hand-out not labeled within this time returns to the pool |
| ``consensus_min_votes`` | 1 | labels an object needs before it has a consensus |
| ``consensus_tie`` | ``unsure`` | the consensus of a tie: ``unsure``, ``reject`` or ``none`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MAX_OVERLAP = 50
MAX_HANDOUT_MINUTES = 7 * 24 * 60  # a week
TIE_RULES = ("unsure", "reject", "none")


@dataclass(frozen=True)
class TeamRules:
    """How a campaign shares its work and turns its labels into one answer per object."""

    handout: bool = False
    overlap: int = 1
    handout_minutes: float = 30.0
    consensus_min_votes: int = 1
    consensus_tie: str = "unsure"  # one of TIE_RULES; "none": a tie has no consensus

    @property
    def handout_ttl(self) -> timedelta:
        return timedelta(minutes=self.handout_minutes)

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> TeamRules:
        """The rules of a campaign's ``settings`` (keys missing or null take the defaults)."""
        settings = settings or {}
        values = {name: settings[name] for name in cls.__dataclass_fields__
                  if settings.get(name) is not None}
        return cls(**values)
