-- Fewer indexes to write per message and per timer (issue 22, the catch-up). Every queued
-- message wrote six index entries and every armed timer four. Three of them served nothing the
-- lanes' indexes (migration 005) do not serve as well:
--   outbox_ready (not_before) WHERE pending: the claim, the next wake-up and the cancelling of
--     stopped ladders' messages use outbox_ready_urgent (urgent DESC, not_before, id), once per
--     value of `urgent` (queries.py: NEXT_READY, CANCEL_STOPPED);
--   outbox_pending_to (channel, address) WHERE pending: no statement could use it. The group's
--     join (queries.py: JOIN_GROUP) matches (channel, coalesce(address, recipient)) of ordinary
--     pending rows and so read every pending row (a sequential scan, about 100 ms a claim with
--     60,000 ready rows): outbox_group_to below serves it;
--   timers_due (due_at) WHERE pending: the claim and the next wake-up use timers_due_urgent
--     (urgent DESC, due_at), once per value of `urgent` (queries.py: NEXT_DUE).
DROP INDEX IF EXISTS outbox_ready;
DROP INDEX IF EXISTS outbox_pending_to;
DROP INDEX IF EXISTS timers_due;
CREATE INDEX IF NOT EXISTS outbox_group_to ON outbox (channel, (coalesce(address, recipient)))
    WHERE status = 'pending' AND NOT urgent;
