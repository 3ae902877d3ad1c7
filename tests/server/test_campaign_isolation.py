"""Campaign isolation beyond the authorization matrix (tests/server/test_authorization.py):

- the matrix has a row for every operation of the OpenAPI document (as well as every route), so
  a new endpoint cannot be published without deciding who may call it, and a non-member gets
  404 (or 401 anonymous) on every campaign-scoped one;
- the owner of another campaign who puts campaign A's exports, jobs, seeds, members, probe
  versions or sources under their own campaign's URL gets 404, and A's are left as they were.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from test_authorization import ENDPOINTS, Endpoint, build_world

from server.models import Role

CAMPAIGN_RULE = "/api/campaigns/<int:campaign_id>"
# what, after the campaign, names a thing of that campaign (object ids are the survey's)
OWN_IDS = ("<int:export_id>", "<int:job_id>", "<int:seed_id>", "<int:version>",
           "<int:user_id>", "<source>")


def _normalised(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_documented_operation_has_a_row_in_the_matrix(client):
    spec = client.get("/api/openapi.json").json
    documented = {(method.upper(), path) for path, item in spec["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    rows = {(e.method, _normalised(e.rule)) for e in ENDPOINTS}
    assert documented - rows == set(), "add these operations to test_authorization.ENDPOINTS"


def test_non_members_get_404_on_every_campaign_scoped_endpoint():
    scoped = [e for e in ENDPOINTS if e.rule.startswith(CAMPAIGN_RULE)]
    assert len(scoped) >= 30
    for endpoint in scoped:
        assert endpoint.expected["nonmember"] == 404, endpoint
        assert endpoint.expected["anonymous"] == 401, endpoint


CROSS = [e for e in ENDPOINTS if e.rule.startswith(CAMPAIGN_RULE)
         and any(part in e.rule[len(CAMPAIGN_RULE):] for part in OWN_IDS)]


@pytest.mark.parametrize("endpoint", CROSS, ids=str)
def test_another_campaigns_things_are_404_under_ones_own_campaign(endpoint: Endpoint, people,
                                                                   app):
    world = build_world(people, app)
    mine = people.campaign("outsider", name="mine")
    outsider = people.session("outsider")  # owner of "mine", not a member of world.campaign
    kwargs = {}
    if endpoint.body:
        kwargs["json"] = endpoint.body("outsider")
    if endpoint.form:
        kwargs["data"] = endpoint.form(world)
    crossed = endpoint.path(dataclasses.replace(world, campaign=mine))
    response = outsider.open(endpoint.method, crossed, **kwargs)
    response.close()
    assert response.status_code == 404, (crossed, response.json)
    # campaign A's thing is still there for its owner
    olga = people.session("olga")
    if endpoint.method != "GET":
        reread = Endpoint("GET", endpoint.rule, endpoint.path, endpoint.expected)
        if any(e.method == "GET" and e.rule == endpoint.rule for e in ENDPOINTS):
            response = olga.get(reread.path(world))
            response.close()
            assert response.status_code == 200, reread
    members = olga.get(f"/api/campaigns/{world.campaign}/members").json
    assert {m["username"]: m["role"] for m in members} == {
        "olga": Role.OWNER.value, "vera": Role.VIEWER.value, "leo": Role.LABELER.value}
