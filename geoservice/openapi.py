"""The API description as OpenAPI 3.0, which OGC API – Features (oas30) and QGIS expect.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12). The differences that matter are few and
mechanical: ``null`` as a type becomes ``nullable``, ``const`` becomes a one-value ``enum``,
numeric ``exclusiveMinimum`` becomes the boolean form, and file parts become ``binary``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

OPENAPI_VERSION = "3.0.3"


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def downgrade_schema(node: Any) -> Any:
    """Rewrite one JSON Schema 2020-12 node (and everything under it) as OpenAPI 3.0."""
    if isinstance(node, list):
        return [downgrade_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: downgrade_schema(value) for key, value in node.items()}
    for combinator in ("anyOf", "oneOf"):
        options = out.get(combinator)
        if isinstance(options, list) and any(_is_null(o) for o in options):
            rest = [o for o in options if not _is_null(o)]
            del out[combinator]
            if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
                out = {**rest[0], **out}
            elif rest:
                out[combinator] = rest
            out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else types
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out[bound]
            out[bound] = True
    if "contentMediaType" in out and out.get("type") == "string":
        out.pop("contentMediaType")
        out["format"] = "binary"
    if isinstance(out.get("examples"), list) and "example" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out


def openapi_30(app: FastAPI) -> dict[str, Any]:
    """Build (once) and cache the 3.0 document for ``app``."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        # info.summary is 3.1-only; 3.0 readers get it as the first line of the description.
        description="\n\n".join(p for p in (app.summary, app.description) if p),
        routes=app.routes,
    )
    spec["openapi"] = OPENAPI_VERSION
    if "components" in spec:
        spec["components"] = downgrade_schema(spec["components"])
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            for param in operation.get("parameters", []):
                if "schema" in param:
                    param["schema"] = downgrade_schema(param["schema"])
            for media in operation.get("requestBody", {}).get("content", {}).values():
                media["schema"] = downgrade_schema(media.get("schema", {}))
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        media["schema"] = downgrade_schema(media["schema"])
    app.openapi_schema = spec
    return spec


def use_openapi_30(app: FastAPI) -> None:
    """Serve the 3.0 document at ``/openapi.json``."""
    app.openapi = lambda: openapi_30(app)  # type: ignore[method-assign]
