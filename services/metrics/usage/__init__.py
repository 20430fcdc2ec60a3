"""Usage: raw events, daily rollups, recompute."""
