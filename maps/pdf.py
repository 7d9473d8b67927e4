"""A report as PDF for the archive, rendered by WeasyPrint.

WeasyPrint (BSD) lays out HTML and CSS itself (Pango for text): no browser process to start,
nothing to keep running, the same output on every machine, and it reads the report's inline
SVG map as vector graphics. Reports are self-contained; the fetcher refuses every URL, so a
report can never make the server fetch anything.
"""

from __future__ import annotations

from typing import Any, NoReturn


def _no_fetching(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"reports fetch nothing ({url[:60]})")


def html_to_pdf(html: str) -> bytes:
    """The HTML document as PDF bytes (A4, the report's print styles)."""
    from weasyprint import HTML  # imported on use: it loads Pango

    pdf = HTML(string=html, url_fetcher=_no_fetching).write_pdf()
    if pdf is None:  # pragma: no cover - write_pdf without a target always returns bytes
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)
