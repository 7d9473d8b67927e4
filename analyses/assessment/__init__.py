"""Carbon assessment of a building proposal: what the land holds, what building would release.

Split along its seams: ``footprint`` (GeoJSON in, a repaired polygon in Norway out),
``overlay`` (what the land under it is, in PostGIS), ``arithmetic`` (stock, emissions and what
stays, each number with its factor row, table version and preset), ``valuation`` (one
footprint valued) and ``proposals`` (a proposal with alternatives, stored and read back). The
names below are its public interface.
"""

from analyses.assessment.arithmetic import MEASURED, default_built_share, split_peat, summarize
from analyses.assessment.footprint import footprint_geometries, prepare_footprint
from analyses.assessment.proposals import (
    ProposalRequest,
    StoredProposal,
    assess,
    get_proposal,
    load_proposal,
)
from analyses.assessment.valuation import assess_footprint

__all__ = [
    "MEASURED",
    "ProposalRequest",
    "StoredProposal",
    "assess",
    "assess_footprint",
    "default_built_share",
    "footprint_geometries",
    "get_proposal",
    "load_proposal",
    "prepare_footprint",
    "split_peat",
    "summarize",
]
