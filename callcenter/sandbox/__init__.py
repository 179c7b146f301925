"""The development Asterisk sandbox: an mmdebstrap root with Asterisk 22 and baresip (see DESIGN.md)."""
