"""The call log's storage: models, sessions, the event journal and the idempotent call writer."""
