from typing import Literal

from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from santamon.api.openapi import Body, Operation, build_openapi


class Item(BaseModel):
    """An item."""

    item_id: str = Field(pattern="^[0-9a-f]{32}$")
    tags: list[str] | None = None


class Page(BaseModel):
    """A page of items."""

    items: list[Item]
    next_cursor: str | None


class Query(BaseModel):
    severity: list[Literal["low", "high"]] | None = Field(None, description="Comma separated.")
    limit: int = Field(100, ge=1, le=1000)


OPS = [
    Operation(
        "POST",
        "/items",
        "Add",
        "items",
        "agent",
        {200: Page},
        body=Body(Item, also_list=True, max_items=1000),
    ),
    Operation("GET", "/items", "List", "items", "analyst", {200: Page}, query=Query),
    Operation(
        "GET",
        "/items/{item_id}",
        "One",
        "items",
        "analyst",
        {200: Item, 404: "Unknown id."},
        path_params={"item_id": "The id."},
    ),
    Operation(
        "GET",
        "/metrics",
        "Metrics",
        "ops",
        "analyst",
        {200: "Prometheus text."},
        content_type="text/plain",
    ),
    Operation("GET", "/health", "Health", "ops", "public", {200: Page, 503: "Unhealthy."}),
]


def test_document_is_valid_openapi_31_with_shared_component_schemas():
    doc = build_openapi(OPS, title="T", version="1")
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    assert {"Item", "Page", "Error"} <= set(schemas)
    assert "Query" not in schemas  # query models become parameters
    assert schemas["Page"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Item"}
    body = doc["paths"]["/items"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 1000


def test_query_parameters_come_from_the_query_model_without_null():
    doc = build_openapi(OPS, title="T", version="1")
    params = {p["name"]: p for p in doc["paths"]["/items"]["get"]["parameters"]}
    assert params["severity"]["schema"]["type"] == "array"
    assert (params["severity"]["style"], params["severity"]["explode"]) == ("form", False)
    assert "default" not in params["severity"]["schema"]
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }


def test_auth_and_errors_follow_the_role():
    doc = build_openapi(OPS, title="T", version="1")
    health = doc["paths"]["/health"]["get"]
    assert health["security"] == []
    assert set(health["responses"]) == {"200", "503"}
    listing = doc["paths"]["/items"]["get"]
    assert {"401", "403", "429"} <= set(listing["responses"])
    assert "Retry-After" in listing["responses"]["429"]["headers"]
    ingest = doc["paths"]["/items"]["post"]
    assert "403" not in ingest["responses"]
    assert {"400", "413", "422"} <= set(ingest["responses"])
