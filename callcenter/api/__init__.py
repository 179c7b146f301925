"""The history API (FastAPI): REST under /api."""
