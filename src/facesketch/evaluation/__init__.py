"""Scoring: the benchmark protocol, the image metrics, the evaluate stage and image grids."""
