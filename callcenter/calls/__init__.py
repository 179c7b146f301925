"""From journaled CEL events to call-log records (pure code: no I/O, no clock)."""
