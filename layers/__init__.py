"""Layer ingest, validation, CRS handling, the layer catalogue and Norwegian code lists."""
