"""The JSON API under ``/api``: one blueprint per resource."""

from __future__ import annotations

from apiflask import APIFlask

from server.api import (
    campaigns,
    candidates,
    imports,
    labels,
    members,
    objects,
    seeds,
    session,
    team,
    tokens,
    users,
)

BLUEPRINTS = (session.bp, tokens.bp, users.bp, campaigns.bp, members.bp, labels.bp, seeds.bp,
              candidates.bp, objects.bp, team.bp, imports.bp)


def register_blueprints(app: APIFlask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
