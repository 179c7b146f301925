"""Recordings: closed MixMonitor WAVs in the spool become compact, verified files in the store.

Pipeline (one module per stage): ``spool`` finds closed WAVs, ``transcode`` compresses and verifies with
pydub/ffmpeg, ``worker`` records each in the database exactly once, ``retention`` purges and sweeps.
"""
