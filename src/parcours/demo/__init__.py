"""Demo retailer: a synthetic French retailer, deterministic from a seed."""
