"""Asterisk's configuration rendered from the telephony model, and reloading it without cutting calls."""
