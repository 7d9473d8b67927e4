"""Carbon and restoration computations on layers stored in PostGIS."""
