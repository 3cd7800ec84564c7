"""Decisions on embeddings: thresholds, operating points, enrolment, prototypes, names."""
