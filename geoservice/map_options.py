"""The map part of the service settings, for the map pages and the standalone map files."""

from __future__ import annotations

from geoservice.settings import Settings
from maps.assets import vendor_dir
from maps.page import MapOptions


def map_options(
    settings: Settings, tile_base_url: str = "", access_token: str | None = None
) -> MapOptions:
    """Map options from the service settings."""
    return MapOptions(
        basemap=settings.map_basemap,
        basemap_attribution=settings.map_basemap_attribution,
        inline_feature_limit=settings.map_inline_feature_limit,
        max_inline_bytes=int(settings.map_max_inline_mb * 1_000_000),
        assets_dir=vendor_dir(settings.map_assets_dir),
        tile_base_url=tile_base_url.rstrip("/"),
        access_token=access_token,
    )
