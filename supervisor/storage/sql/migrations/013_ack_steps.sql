-- Which steps of its ladder each acknowledgement ended (core.acks' scope), so a second
-- acknowledgement that would end nothing new is refused (409) instead of recorded again.
-- NULL: the whole ladder (an unscoped acknowledgement), or a row from before this column.
ALTER TABLE acks ADD COLUMN IF NOT EXISTS steps int[];
CREATE INDEX IF NOT EXISTS acks_ladder ON acks (ticket, rule, cycle);
