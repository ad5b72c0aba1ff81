-- Urgent work first: the scheduler claims due timers of urgent tickets before the others, and the
-- dispatcher claims urgent messages before the others (ORDER BY urgent DESC, ...).
ALTER TABLE timers ADD COLUMN IF NOT EXISTS urgent boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS timers_due_urgent ON timers (urgent DESC, due_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_ready_urgent ON outbox (urgent DESC, not_before, id)
    WHERE status = 'pending';
