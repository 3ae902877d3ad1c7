"""The demo's accounts and example campaign, made once and kept across runs.

``galsearch demo`` calls :func:`setup_demo` in an app context every time it starts: it creates
what is missing and leaves what exists alone, so a second ``make demo`` neither fails nor
duplicates anything, and labels made in an earlier session are kept.

- the user ``demo`` (an administrator, so every screen of the app can be tried) with the
  password :data:`DEMO_PASSWORD`: the server listens on 127.0.0.1 only, and a fixed, documented
  password keeps the README's two commands all a newcomer needs. A password changed in the app
  is kept.
- with the survey's truth (a simulated survey), the campaign :data:`EXAMPLE_CAMPAIGN` owned by
  ``demo`` and seeded with one lens: the lens whose precomputed nearest neighbours hold the most
  other lenses, so the first page of candidates shows what similarity search finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from server.auth.accounts import create_user
from server.extensions import db
from server.models import Campaign, CampaignSeed, Membership, Role, SeedKind, User

DEMO_USER = "demo"
DEMO_PASSWORD = "galsearch"
EXAMPLE_TARGET = "lens"
EXAMPLE_NAMES = {"lens": "Example: strong lenses"}  # other targets: "Example: <target>"
EXAMPLE_CAMPAIGN = EXAMPLE_NAMES[EXAMPLE_TARGET]
PAGE = 48  # candidates on the app's first page


@dataclass
class DemoSetup:
    user_created: bool
    campaign_id: int | None  # None: no truth to seed an example from
    campaign_created: bool
    seed_object_id: int | None
    same_class_on_first_page: int | None  # other targets among the seed's first PAGE neighbours


def best_example(bundle, labels: np.ndarray, target: str = EXAMPLE_TARGET,
                 page: int = PAGE) -> tuple[int, int] | None:
    """The ``target`` object with the most other ``target`` objects among its ``page`` nearest
    neighbours (ties: the lowest id) and that count; None when the survey has none."""
    members = np.flatnonzero(labels == target)
    if members.size == 0:
        return None
    is_target = labels == target
    best = (-1, -1)
    for oid in members.tolist():
        ids, _ = bundle.neighbours(oid, k=page)
        found = int(is_target[ids].sum())
        if found > best[1]:
            best = (oid, found)
    return best


def setup_demo(bundle, survey, target: str = EXAMPLE_TARGET) -> DemoSetup:
    """Create the demo user and example campaign where missing (call in an app context).

    Args:
        bundle: the app's search bundle.
        survey: its survey (the example needs its truth).
        target: the class the example campaign looks for.
    """
    name = EXAMPLE_NAMES.get(target, f"Example: {target}")
    user = db.session.scalar(select(User).where(User.username == DEMO_USER))
    user_created = user is None
    if user is None:
        user = create_user(DEMO_USER, DEMO_PASSWORD, is_admin=True)
        db.session.flush()

    truth = survey.truth()
    example = best_example(bundle, truth.labels, target) if truth is not None else None
    campaign = db.session.scalar(select(Campaign).where(
        Campaign.name == name, Campaign.created_by_id == user.id))
    campaign_created = False
    seed_id = found = None
    if campaign is not None:  # made by an earlier run: report its own seed
        seed_id = next((s.object_id for s in campaign.seeds if s.kind == SeedKind.OBJECT), None)
        if seed_id is not None and truth is not None:
            ids, _ = bundle.neighbours(seed_id, k=PAGE)
            found = int((truth.labels[ids] == target).sum())
    elif example is not None:
        seed_id, found = example
        campaign = Campaign(
            name=name, target=target, settings={}, created_by=user,
            description=(f"Made by `galsearch demo` from the simulated {target} {seed_id}: "
                         "candidates come most similar first. Label them with a (accept), "
                         "r (reject), u (unsure); after a few labels the probe reranks the "
                         "rest."))
        campaign.memberships.append(Membership(user=user, role=Role.OWNER))
        campaign.seeds.append(CampaignSeed(kind=SeedKind.OBJECT, object_id=seed_id,
                                           note=f"a simulated {target}", added_by=user))
        db.session.add(campaign)
        campaign_created = True
    db.session.commit()
    return DemoSetup(user_created=user_created,
                     campaign_id=campaign.id if campaign is not None else None,
                     campaign_created=campaign_created, seed_object_id=seed_id,
                     same_class_on_first_page=found)
