"""Storage: the Store interface, PostgreSQL and in-memory stores, named SQL and migrations."""
