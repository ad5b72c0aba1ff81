"""The functional core: pure functions of events, policy and an explicit `now` (no I/O)."""
