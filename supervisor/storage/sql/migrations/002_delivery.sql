-- Delivery bookkeeping for the dispatcher (supervisor/dispatcher.py) and the Twilio webhooks.

-- Who holds a 'sending' row and since when: a row whose claim is older than reconcile_after_s
-- belongs to a crashed worker or to an ambiguous send, and is reconciled by another worker.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_by text;
-- What the provider reported afterwards (Twilio status callbacks): delivered, undelivered, ...
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS delivery_status text;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS delivered_at timestamptz;

-- Stale claims, found by the reconciler.
CREATE INDEX IF NOT EXISTS outbox_sending ON outbox (claimed_at) WHERE status = 'sending';
-- Rows that went out as one message share group_id (= the id of the group's first row).
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (group_id) WHERE group_id IS NOT NULL;
-- Status callbacks that carry only the provider's SID.
CREATE INDEX IF NOT EXISTS outbox_provider ON outbox (provider_id) WHERE provider_id IS NOT NULL;
-- Pending messages for one person and channel, joined into a group when one of them is sent.
CREATE INDEX IF NOT EXISTS outbox_pending_to ON outbox (channel, address) WHERE status = 'pending';
-- An SMS reply ("收到") is matched to the latest message sent to that number.
CREATE INDEX IF NOT EXISTS outbox_sent_to ON outbox (address, sent_at) WHERE status = 'sent';
