"""Carbon-aware land-use planning service for Norwegian municipalities."""

__version__ = "0.1.0"
