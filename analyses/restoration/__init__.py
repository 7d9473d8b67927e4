"""Restoration: the project registry and progress against Target 2 (30 % by 2030) and the
national 15 %.

The package is split along its seams: ``registry`` (projects and their versions),
``measure`` (the measurement engine over scratch tables), ``progress`` (targets, progress
and the yearly series), ``rewetting`` (emissions avoided by rewetting) and ``map_data`` (what
the restoration map draws). The names below are its public interface.
"""

from analyses.restoration.map_data import projects_geojson, shares_by_region_over
from analyses.restoration.progress import (
    progress,
    progress_from_areas,
    progress_of_regions,
    region_areas,
    targets,
    timeseries,
    timeseries_csv,
)
from analyses.restoration.registry import (
    add_status,
    delete_project,
    get_project,
    import_projects,
    list_projects,
    project_history,
    restore_project,
    save_project,
)
from analyses.restoration.rewetting import rewetting_effect

__all__ = [
    "add_status",
    "delete_project",
    "get_project",
    "import_projects",
    "list_projects",
    "progress",
    "progress_from_areas",
    "progress_of_regions",
    "project_history",
    "projects_geojson",
    "region_areas",
    "restore_project",
    "rewetting_effect",
    "save_project",
    "shares_by_region_over",
    "targets",
    "timeseries",
    "timeseries_csv",
]
