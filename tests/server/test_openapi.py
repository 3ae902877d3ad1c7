"""The OpenAPI document is generated from the schemas that validate requests, and is complete."""

from __future__ import annotations

import re

import schemathesis

PUBLIC = {("post", "/api/session")}


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_document_is_openapi_3_and_every_reference_resolves(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "galsearch"
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert set(spec["components"]["securitySchemes"]) == {"BearerAuth", "SessionCookie"}


def test_every_api_route_is_documented_with_security_and_error_shape(client, app):
    spec = client.get("/api/openapi.json").json
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule in ("/api/openapi.json", "/api/docs"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # <int:id>, <name> -> {..}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            key = (method.lower(), path)
            assert key in documented, key
            operation = spec["paths"][path][key[0]]
            if key not in PUBLIC:
                assert operation["security"] == [{"BearerAuth": []}, {"SessionCookie": []}], key
                assert "401" in operation["responses"], key
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ValidationError" if status == "422" else "/HTTPError")


def test_error_schemas_describe_the_error_shape(client):
    schemas = client.get("/api/openapi.json").json["components"]["schemas"]
    assert schemas["HTTPError"]["required"] == ["status", "title", "detail"]
    assert "errors" in schemas["ValidationError"]["required"]


def test_request_schemas_come_from_the_validating_schemas(client):
    schemas = client.get("/api/openapi.json").json["components"]["schemas"]
    assert schemas["LabelIn"]["properties"]["value"]["enum"] == ["accept", "reject", "unsure"]
    assert schemas["LabelIn"]["required"] == ["value"]
    bulk = schemas["BulkIn"]["properties"]["labels"]
    assert (bulk["minItems"], bulk["maxItems"]) == (1, 1000)
    assert schemas["CampaignSettingsSchema"]["properties"]["mag_window"]["minimum"] == 0.01


def test_schemathesis_loads_every_operation(app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in schema.raw_schema["paths"].values())
