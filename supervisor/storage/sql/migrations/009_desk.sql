-- The supervisor's desk (supervisor/desk/): audit trail, computed deadlines, read indexes.

-- Who signed in (or failed to), who acknowledged what, from where. Never a password.
CREATE TABLE IF NOT EXISTS desk_audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,              -- the user name given (also for a failed sign-in)
    role    text,
    unit    text,
    action  text NOT NULL,              -- sign_in | sign_in_failed | sign_in_limited | sign_out | ack
    ticket  text,
    rule    text,
    cycle   int,
    steps   int[],                      -- for ack: the ladder steps it ended
    remote  text,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS desk_audit_ticket ON desk_audit (ticket, rule, cycle) WHERE ticket IS NOT NULL;

-- A ticket's effective deadlines as the rules compute them (deadlines.compute), kept by the desk's
-- indexer (supervisor/desk/index.py) for the open tickets and last week's closures, with the
-- ticket's status, unit and sign/reply times copied, so that the overview and the 单位 page read
-- one narrow table of tens of thousands of rows, not a million tickets.
CREATE TABLE IF NOT EXISTS desk_deadlines (
    ticket          text PRIMARY KEY,
    status          text NOT NULL,
    unit            text,
    signed_at       timestamptz,
    replied_at      timestamptz,
    sign_by         timestamptz,
    reply_by        timestamptz,
    commitment_due  timestamptz,
    src_updated_at  timestamptz NOT NULL,  -- tickets.updated_at this row was computed from
    policy          text NOT NULL          -- which loaded rules computed it
);
CREATE INDEX IF NOT EXISTS desk_deadlines_reply ON desk_deadlines (reply_by);
CREATE INDEX IF NOT EXISTS desk_deadlines_sign ON desk_deadlines (sign_by);

-- The indexer reads tickets changed since its watermark.
CREATE INDEX IF NOT EXISTS tickets_updated ON tickets (updated_at, ticket);
-- The list: newest first, keyset on (created_at, ticket) (a ticket not yet created sorts last);
-- and per unit. (Each index on tickets costs ingest a little: every ticket update writes them.)
CREATE INDEX IF NOT EXISTS tickets_list
    ON tickets ((coalesce(created_at, '-infinity'::timestamptz)) DESC, ticket DESC);
CREATE INDEX IF NOT EXISTS tickets_unit_list
    ON tickets (unit, (coalesce(created_at, '-infinity'::timestamptz)) DESC, ticket DESC);
-- Escalations not acknowledged: active ladders only.
CREATE INDEX IF NOT EXISTS ladders_active ON ladders (ticket, rule, cycle) WHERE status = 'active';
-- Escalations: the messages that went to someone above the liaison, by ladder.
CREATE INDEX IF NOT EXISTS outbox_escalated ON outbox (ticket, rule, cycle)
    WHERE role IN ('head', 'supervisor', 'leader') AND status IN ('sent', 'sending');
-- Failed messages on the overview; the month's messages on the 单位 page.
CREATE INDEX IF NOT EXISTS outbox_failed ON outbox (created_at) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_at, id);
