"""Links of OGC documents for clients that authenticate by query parameter."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request


def carry_token(request: Request, doc: dict[str, Any]) -> dict[str, Any]:
    """A client that authenticated with ``?access_token=`` (QGIS and GDAL without headers)
    finds it on every link of the document, so following a link keeps it signed in."""
    token = request.query_params.get("access_token")
    if not token:
        return doc
    own = str(request.base_url)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            href = node.get("href")
            if isinstance(href, str) and href.startswith(own) and "access_token=" not in href:
                node["href"] = (
                    href + ("&" if "?" in href else "?") + urlencode({"access_token": token})
                )
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return doc
