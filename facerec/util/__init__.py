"""Small helpers used everywhere: binomial bounds, JSON fields, lazy imports."""
