"""HTML pages of the OGC API (``f=html`` or a browser's ``Accept``): the same documents as
the JSON, for a person — links as links, collections as a table, items on a map served
offline like the service's other maps. Every value is HTML-escaped; the plain pages carry no
script at all.
"""

from __future__ import annotations

from html import escape
from typing import Any

from core.i18n import number
from maps.page import MapOptions, MapPage, bounds_of
from maps.styles import kind_style

CSS = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3em .5em;
text-align:left;vertical-align:top}.muted{color:#666;font-size:.9em}
"""


PAGING = {"prev": "Forrige side", "next": "Neste side"}


def _links(links: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li><a href="{escape(str(link["href"]))}">{escape(str(link.get("title") or link["rel"]))}'
        f"</a> <span class=muted>({escape(str(link['rel']))}, "
        f"{escape(str(link.get('type', '')))})</span></li>"
        for link in links
        if not link.get("templated")
    )
    return f"<ul>{items}</ul>"


def plain_page(title: str, body: str) -> str:
    """A document without scripts, in bokmål."""
    return (
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )


def landing_page(doc: dict[str, Any]) -> str:
    """The landing page: what the API offers, as links."""
    return plain_page(
        doc["title"],
        f"<p>{escape(doc['description'])}</p>{_links(doc['links'])}",
    )


def collections_page(doc: dict[str, Any]) -> str:
    """Every collection in a table, each name a link to it."""
    rows = "".join(
        f'<tr><td><a href="{escape(_self(c))}?f=html">{escape(c["title"])}</a></td>'
        f"<td><code>{escape(c['id'])}</code></td><td>{escape(c['description'])}</td></tr>"
        for c in doc["collections"]
    )
    return plain_page(
        "Datasett (collections)",
        "<table><tr><th>Navn</th><th>Id</th><th>Beskrivelse</th></tr>" + rows + "</table>",
    )


def collection_page(doc: dict[str, Any]) -> str:
    """One collection: description, extent and its links."""
    west, south, east, north = doc["extent"]["spatial"]["bbox"][0]
    return plain_page(
        doc["title"],
        f"<p>{escape(doc['description'])}</p>"
        f"<p class=muted>Id <code>{escape(doc['id'])}</code>; utstrekning (CRS84) "
        f"{west:.4f}, {south:.4f} – {east:.4f}, {north:.4f}</p>"
        f'<p><a href="{escape(_self(doc))}/items?f=html">Vis objektene på kart</a></p>'
        + _links(doc["links"]),
    )


def _self(doc: dict[str, Any]) -> str:
    return str(next(link["href"] for link in doc["links"] if link["rel"] == "self"))


def items_map(
    title: str,
    kind: str,
    collection: dict[str, Any],
    links: list[dict[str, Any]],
    options: MapOptions,
    *,
    matched: int | None = None,
) -> MapPage:
    """A page of items on a map (CRS84), with paging links in a panel."""
    bounds = bounds_of(collection) or (4.0, 57.0, 31.0, 71.5)
    page = MapPage(title, bounds, options)
    names = sorted({k for f in collection["features"] for k in (f.get("properties") or {})})
    style = kind_style(kind, names)
    page.add_geojson(title, collection, style, popup=[(n, n) for n in names[:12]])
    shown = len(collection["features"])
    counts = f"{number(shown)} av {number(matched)} objekter" if matched is not None else "1 objekt"
    paging = "".join(
        f'<a href="{escape(str(link["href"]))}">{PAGING[link["rel"]]}</a> '
        for link in links
        if link["rel"] in PAGING
    )
    page.add_panel(f"<h4>{escape(title)}</h4><div>{counts}</div><div>{paging}</div>")
    return page
