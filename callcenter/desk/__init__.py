"""The operator desk: availability in the queues (log in, log out, pause with a reason) and the after-call work."""
