-- Monthly statistics (supervisor/stats): facts derived from the events by the office's deadline
-- rules, refreshed incrementally (supervisor/stats/refresh.py). Everything here can be dropped
-- and rebuilt from `events`; the monthly figures are SQL aggregates over these and `events`.

-- Event-level figures read events by type and time (received, re-openings, returns).
CREATE INDEX IF NOT EXISTS events_type_at ON events (type, at);
-- Reminders and escalations of a period are outbox rows by the time they fired.
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created_at);

-- One row per dispatch (派单/改派): its sign-off deadline and when the lead unit signed it.
CREATE TABLE IF NOT EXISTS stats_dispatches (
    ticket     text NOT NULL,
    n          int NOT NULL,            -- 1 = first dispatch, 2 = first re-dispatch, ...
    at         timestamptz NOT NULL,
    unit       text NOT NULL,
    sign_due   timestamptz,
    signed_at  timestamptz,             -- first signature by that unit before the next dispatch
    PRIMARY KEY (ticket, n)
);
CREATE INDEX IF NOT EXISTS stats_dispatches_at ON stats_dispatches (at);

-- One row per handling (办理): 0 = before any re-opening, k = after the k-th re-opening.
CREATE TABLE IF NOT EXISTS stats_handlings (
    ticket      text NOT NULL,
    n           int NOT NULL,
    unit        text,                   -- lead unit of the handling's latest dispatch
    reply_due   timestamptz,            -- the deadline that applies (platform, default, extension)
    replied_at  timestamptz,            -- the handling's first reply
    reply_unit  text,                   -- the unit credited with the reply (and its callback)
    prev_due    timestamptz,            -- the deadline before reply_due (an extension moved it)
    due_since   timestamptz,            -- when reply_due took effect
    PRIMARY KEY (ticket, n)
);
CREATE INDEX IF NOT EXISTS stats_handlings_replied ON stats_handlings (replied_at);
CREATE INDEX IF NOT EXISTS stats_handlings_due ON stats_handlings (reply_due);

-- One row per callback (回访), credited to the unit whose reply it rates.
CREATE TABLE IF NOT EXISTS stats_callbacks (
    event_id     text PRIMARY KEY,
    ticket       text NOT NULL,
    at           timestamptz NOT NULL,
    unit         text,
    satisfaction text NOT NULL,
    resolved     boolean
);
CREATE INDEX IF NOT EXISTS stats_callbacks_at ON stats_callbacks (at);

-- One row per commitment (承诺): its due time and when the unit reported it kept.
CREATE TABLE IF NOT EXISTS stats_commitments (
    ticket   text NOT NULL,
    n        int NOT NULL,
    made_at  timestamptz NOT NULL,
    unit     text,
    due      timestamptz,
    kept_at  timestamptz,
    ended_at timestamptz,               -- the ticket closed or re-opened before the due time
    PRIMARY KEY (ticket, n)
);
CREATE INDEX IF NOT EXISTS stats_commitments_made ON stats_commitments (made_at);
CREATE INDEX IF NOT EXISTS stats_commitments_due ON stats_commitments (due);

-- One row per ticket: what the per-ticket figures need.
CREATE TABLE IF NOT EXISTS stats_tickets (
    ticket       text PRIMARY KEY,
    created_at   timestamptz,
    unit         text,                  -- current lead unit
    category     text,
    caller_hash  text,
    address_key  text,                  -- the address without spaces, for same-matter grouping
    dispute_at   timestamptz,           -- 3rd dispatch or 2nd unit's return (推诿)
    handled3_at  timestamptz,           -- the second re-opening (third handling)
    overdue_due  timestamptz            -- open, current handling unreplied: its deadline
);
CREATE INDEX IF NOT EXISTS stats_tickets_created ON stats_tickets (created_at);
CREATE INDEX IF NOT EXISTS stats_tickets_dispute ON stats_tickets (dispute_at) WHERE dispute_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS stats_tickets_handled3 ON stats_tickets (handled3_at) WHERE handled3_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS stats_tickets_overdue ON stats_tickets (overdue_due) WHERE overdue_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS stats_tickets_caller ON stats_tickets (caller_hash, category, created_at) WHERE caller_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS stats_tickets_address ON stats_tickets (address_key, created_at) WHERE address_key IS NOT NULL;

-- How far the facts are refreshed: events up to last_seq, under the deadline rules `policy`
-- (a fingerprint; when the rules change, every ticket is derived again).
CREATE TABLE IF NOT EXISTS stats_refresh (
    id          int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_seq    bigint NOT NULL DEFAULT 0,
    policy      text NOT NULL DEFAULT '',
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
