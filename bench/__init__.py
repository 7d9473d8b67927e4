"""Benchmarks: ``python -m bench`` runs them all and writes results/latest.{json,md}."""
