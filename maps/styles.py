"""Colours for map classes (shared by every map builder)."""

from __future__ import annotations

# AR5 arealtype colours, close to NIBIO's standard AR5 map legend.
AR5_COLOURS: dict[int, str] = {
    11: "#f5a9a9",  # bebygd
    12: "#b3b3b3",  # samferdsel
    21: "#ffd16e",  # fulldyrka jord
    22: "#ffff4c",  # overflatedyrka jord
    23: "#ffffad",  # innmarksbeite
    30: "#9ecc73",  # skog
    50: "#d9d9d9",  # åpen fastmark
    60: "#8fd1d1",  # myr
    70: "#ffffff",  # snøisbre
    81: "#91e7ff",  # ferskvann
    82: "#d2ffff",  # hav
    99: "#ff00ff",  # ikke kartlagt
}
UNKNOWN_COLOUR = "#eeeeee"
FOOTPRINT_COLOURS = ("#d7191c", "#2c7bb6", "#fdae61", "#7b3294", "#1a9641")
