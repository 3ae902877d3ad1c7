"""The JSON API under ``/api``: one blueprint per resource."""

from __future__ import annotations

from apiflask import APIFlask

from server.api import (
    campaigns,
    candidates,
    exports,
    imports,
    jobs,
    labels,
    members,
    objects,
    probe,
    seeds,
    session,
    survey,
    team,
    tokens,
    users,
)

BLUEPRINTS = (session.bp, tokens.bp, users.bp, campaigns.bp, members.bp, labels.bp, seeds.bp,
              candidates.bp, objects.bp, survey.bp, team.bp, jobs.bp, probe.bp, imports.bp,
              exports.bp)


def register_blueprints(app: APIFlask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
