-- Same-matter matching keys (supervisor/core/matter.py): a new ticket finds the tickets about the
-- same matter by index lookup on (kind, key, created_at), never by a scan. kind 'address' holds the
-- normalised address; kind 'grid' the grid, whose recent tickets' summaries are then compared.
-- Callers appear only as their keyed hash.
CREATE TABLE IF NOT EXISTS matter_keys (
    kind        text NOT NULL,          -- address | grid
    key         text NOT NULL,
    ticket      text NOT NULL,
    created_at  timestamptz NOT NULL,
    caller_hash text,
    address_key text,
    summary_key text,
    PRIMARY KEY (kind, key, ticket)
);
CREATE INDEX IF NOT EXISTS matter_keys_lookup ON matter_keys (kind, key, created_at);
CREATE INDEX IF NOT EXISTS matter_keys_ticket ON matter_keys (ticket);
