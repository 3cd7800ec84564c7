"""facerec: face verification and recognition."""
