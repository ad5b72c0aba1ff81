-- Each matter key row remembers the transaction that wrote it, so that a daemon can keep the
-- window's keys in memory and read, per key, only what was written since it last read that key
-- (storage/matter_cache.py): rows of transactions at or after the oldest one still running then.
-- Exact with several daemons (see the module's docstring); no sequence, whose values commit out
-- of order.
ALTER TABLE matter_keys ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS matter_keys_since ON matter_keys (kind, key, xid);
