"""OpenAPI 3.1 document built from the pydantic models the API validates and answers with.

Operations are described once, here, by naming their models; schemas come from pydantic so
the document cannot drift from the validation. A test checks that every route the app
registers is documented and every documented operation is routed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

REF = "#/components/schemas/{model}"
# What an operation needs: "public" (no key), "agent" (an agent key), or any other name for
# what a person's key grants (routes.py uses "read", "write" and "keys"), which a console
# session may carry too.
Auth = str


@dataclass(frozen=True)
class Body:
    """A request body: one model, or (for batch endpoints) one model or a list of them."""

    model: type[BaseModel]
    also_list: bool = False
    max_items: int | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    auth: Auth
    responses: dict[int, type[BaseModel] | str]
    description: str = ""
    body: Body | None = None
    query: type[BaseModel] | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @property
    def operation_id(self) -> str:
        words = [w for w in self.path.replace("{", "").replace("}", "").split("/") if w]
        return "_".join([self.method.lower(), *words]) if words else self.method.lower()


ERRORS = {
    400: "Malformed request (not JSON, or a malformed parameter).",
    401: "Missing or wrong key.",
    403: "The key is valid but may not call this endpoint (a viewer's key may only read).",
    404: "No such resource.",
    408: "The request body did not arrive in time.",
    413: "Request body too large.",
    422: "The request is well-formed JSON but fails validation; `details` says where.",
    429: "Too many failed authentications from this address; see `Retry-After`.",
    503: "The service is not ready (database unavailable).",
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "details": {
                "type": "array",
                "items": {"anyOf": [{"type": "object"}, {"type": "string"}]},
                "description": "422: one object per invalid field (`loc`, `msg`, `type`); "
                "400: the parser's messages.",
            },
        },
        "additionalProperties": True,
    }


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        if _is_array(prop):
            # Lists in a query string are comma separated: ?severity=high,critical
            param["style"] = "form"
            param["explode"] = False
        params.append(param)
    return params


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never JSON null: drop `Optional`'s null."""
    schema = dict(schema)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            del schema["anyOf"]
            schema = {**branches[0], **schema}
        else:
            schema["anyOf"] = branches
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(s.get("type") == "array" for s in schema.get("anyOf", ()))


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _schemas(operations: Sequence[Operation]) -> tuple[Refs, dict[str, Any]]:
    """Every model the operations name, with nested models hoisted beside them.

    Returns the `$ref` for each (model, mode) and the component schemas. A model whose
    input and output schemas differ gets two components (`Name-Input`, `Name-Output`).
    """
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in operations:
        if op.body:
            wanted[(op.body.model, "validation")] = None
        for resp in op.responses.values():
            if isinstance(resp, type):
                wanted[(resp, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF)
    schemas = dict(top.get("$defs", {}))
    for op in operations:
        # Query models become parameters, not components; only their nested models are kept.
        if op.query:
            schemas.update(op.query.model_json_schema(ref_template=REF).get("$defs", {}))
    return dict(refs), dict(sorted(schemas.items()))


def build_openapi(
    operations: Iterable[Operation],
    *,
    title: str,
    version: str,
    description: str = "",
) -> dict[str, Any]:
    ops = list(operations)
    refs, schemas = _schemas(ops)
    schemas["Error"] = _error_schema()
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": description,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in ops)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "An agent key (ingest and heartbeats only), a person's key "
                    "or the admin key.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A person's key or the admin key as "
                    "`Authorization: Bearer <key>`.",
                },
                "consoleSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "santamon_session",
                    "description": "The console's session cookie from `POST /session`; "
                    "writes must also send its `X-CSRF-Token`.",
                },
            },
        },
    }


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _operation(op: Operation, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in op.path_params.items()
    ]
    if op.query:
        params += _query_parameters(op.query.model_json_schema(ref_template=REF))
    if params:
        doc["parameters"] = params
    if op.body:
        one = refs[(op.body.model, "validation")]
        schema: dict[str, Any] = one
        if op.body.also_list:
            many: dict[str, Any] = {"type": "array", "items": one, "minItems": 1}
            if op.body.max_items:
                many["maxItems"] = op.body.max_items
            schema = {"oneOf": [one, many]}
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    responses: dict[str, Any] = {}
    for status, resp in op.responses.items():
        if isinstance(resp, type):
            responses[str(status)] = {
                "description": (resp.__doc__ or resp.__name__).strip().splitlines()[0],
                "content": {"application/json": {"schema": refs[(resp, "serialization")]}},
            }
        elif status >= 400:
            responses[str(status)] = _error_response(resp)
        else:
            kind = "object" if op.content_type == "application/json" else "string"
            responses[str(status)] = {
                "description": resp,
                "content": {op.content_type: {"schema": {"type": kind}}},
            }
    implied = set()
    if op.auth != "public":
        implied |= {401, 429}
    if op.auth not in ("public", "agent"):
        implied.add(403)
    if op.body:
        implied |= {400, 408, 413, 422}
    if op.query or op.path_params:
        implied |= {400, 422}
    for status in implied:
        responses.setdefault(str(status), _error_response(ERRORS[status]))
    if "429" in responses:
        responses["429"]["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
        }
    doc["responses"] = dict(sorted(responses.items()))
    if op.auth == "public":
        doc["security"] = []
    elif op.auth == "agent":
        doc["security"] = [{"apiKey": []}, {"bearer": []}]
    else:
        doc["security"] = [{"apiKey": []}, {"bearer": []}, {"consoleSession": []}]
        doc["x-santamon-access"] = op.auth
    return doc
