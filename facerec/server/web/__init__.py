"""The album review pages served by `facerec serve` at `/` (routes, templates, static assets)."""
