"""Voice prompts: the manifest of names and texts (``manifest.py``) and their generation (``python -m ivr.prompts``).

Generated files live beside this package as ``<lang>/<name>.wav`` (8 kHz mono 16-bit); a studio recording with the
same name replaces a generated one and is never overwritten.
"""
