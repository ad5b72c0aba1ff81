"""How messages leave: the delivery policy (when a message may go) and the outbox worker."""
