"""HTTP routers; thin wrappers that call into the domain packages."""
