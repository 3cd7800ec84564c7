"""The HTTP service (FastAPI) over the Python API."""
