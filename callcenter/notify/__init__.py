"""Telling departments about cases: the messages, the senders (e-mail, webhook) and the outbox worker."""
