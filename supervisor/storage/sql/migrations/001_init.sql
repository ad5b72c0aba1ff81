-- Events are append-only; everything else can be rebuilt from them and the rules.
CREATE TABLE IF NOT EXISTS events (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    ticket      text NOT NULL,
    type        text NOT NULL,
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    data        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ticket ON events (ticket, at, seq);

CREATE TABLE IF NOT EXISTS tickets (
    ticket      text PRIMARY KEY,
    state       jsonb NOT NULL,
    status      text NOT NULL,
    unit        text,
    caller_hash text,
    category    text,
    created_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tickets_caller ON tickets (caller_hash, category, created_at) WHERE caller_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_open ON tickets (status) WHERE status <> 'closed';

-- One run of a rule's escalation ladder for a ticket.
CREATE TABLE IF NOT EXISTS ladders (
    ticket        text NOT NULL,
    rule          text NOT NULL,
    cycle         int NOT NULL,
    anchor_at     timestamptz NOT NULL,
    trigger_event text,
    status        text NOT NULL DEFAULT 'active',   -- active | stopped | acked
    reason        text,
    acked_by      text,
    acked_at      timestamptz,
    opened_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket, rule, cycle)
);

-- Every pending ladder step is a row; the UNIQUE key is what stops a step firing twice.
CREATE TABLE IF NOT EXISTS timers (
    id       bigserial PRIMARY KEY,
    ticket   text NOT NULL,
    rule     text NOT NULL,
    cycle    int NOT NULL,
    step     int NOT NULL,
    rep      int NOT NULL DEFAULT 0,
    due_at   timestamptz NOT NULL,
    status   text NOT NULL DEFAULT 'pending',  -- pending | fired | cancelled | superseded
    fired_at timestamptz,
    late_s   double precision,
    UNIQUE (ticket, rule, cycle, step, rep)
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due_at) WHERE status = 'pending';

-- The durable outbox: a row per message, written in the transaction that fires its timer.
CREATE TABLE IF NOT EXISTS outbox (
    id            bigserial PRIMARY KEY,
    ticket        text NOT NULL,
    rule          text NOT NULL,
    cycle         int NOT NULL,
    step          int NOT NULL,
    rep           int NOT NULL DEFAULT 0,
    role          text NOT NULL,
    recipient     text NOT NULL,            -- contact id, or '-' when nobody could be resolved
    name          text,
    address       text,                     -- E.164; needed to send; never logged
    channel       text NOT NULL,
    text          text NOT NULL,
    urgent        boolean NOT NULL DEFAULT false,
    note          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    not_before    timestamptz NOT NULL,     -- quiet hours and grouping hold a message until then
    status        text NOT NULL DEFAULT 'pending', -- pending | sending | sent | failed | cancelled
    attempts      int NOT NULL DEFAULT 0,
    provider_id   text,
    last_error    text,
    sent_at       timestamptz,
    group_id      bigint,
    UNIQUE (ticket, rule, cycle, step, rep, recipient, channel)
);
CREATE INDEX IF NOT EXISTS outbox_ready ON outbox (not_before) WHERE status = 'pending';

-- Periodic reports (look-back, digest): the key stops one period being sent twice.
CREATE TABLE IF NOT EXISTS report_runs (
    report     text NOT NULL,
    period     text NOT NULL,
    ran_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report, period)
);

CREATE TABLE IF NOT EXISTS acks (
    id        bigserial PRIMARY KEY,
    ticket    text NOT NULL,
    rule      text NOT NULL,
    cycle     int NOT NULL,
    by_whom   text NOT NULL,
    via       text NOT NULL,
    at        timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS heartbeats (
    daemon   text PRIMARY KEY,
    beat_at  timestamptz NOT NULL,
    info     jsonb NOT NULL DEFAULT '{}'
);
