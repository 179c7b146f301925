"""Recordings: the worker that turns closed MixMonitor WAVs into compact files (see the recordings issue)."""
