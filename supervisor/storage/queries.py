"""Every SQL statement of the PostgreSQL store, named. PgStore (pg.py, pg_outbox.py, pg_matter.py)
runs these and nothing else; bench/ reads them to EXPLAIN the hot ones."""

# ruff: noqa: E501

# --- ingest, firing ------------------------------------------------------------------------------

# The batch's tickets, locked for the transaction in one order (hash order: no deadlock between
# batches). An advisory lock, not a placeholder row: a new ticket's row is then written once (by
# INSERT_TICKETS), not inserted empty and rewritten with its six indexes. SELECT_FOR_UPDATE still
# row-locks the stored ones (replan locks those rows too, in ticket order), which UPDATE_TICKETS
# rewrites; the new ones are inserted by INSERT_TICKETS.
LOCK_TICKETS = """
SELECT pg_advisory_xact_lock(7347, k) FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest($1::text[]) AS t ORDER BY 1) AS s
"""
# The same without waiting (the second half of a batch, pg.py `PgStore.ingest`): true when every
# lock was free; the transaction is rolled back otherwise, which releases those it took.
TRY_LOCK_TICKETS = """
SELECT coalesce(bool_and(pg_try_advisory_xact_lock(7347, k)), true) FROM (SELECT DISTINCT hashtext(t) AS k FROM unnest($1::text[]) AS t ORDER BY 1) AS s
"""
# $2: per ticket, the id (the low 32 bits of its xid8) of the transaction whose state this process
# holds (pg.StateCache), or NULL. A row that transaction wrote last (its xmin) comes without its
# state (NULL: the process has it); any other comes with it.
SELECT_FOR_UPDATE = """
SELECT t.ticket, CASE WHEN t.xmin::text::bigint = k.xmin THEN NULL ELSE t.state END AS state
FROM unnest($1::text[], $2::bigint[]) AS k(ticket, xmin) JOIN tickets t ON t.ticket = k.ticket
ORDER BY t.ticket FOR UPDATE OF t
"""
SELECT_FOR_UPDATE_NOWAIT = SELECT_FOR_UPDATE.replace("FOR UPDATE OF t", "FOR UPDATE OF t NOWAIT")
# This transaction's id (assigned now if it has none yet): the version of the states it writes.
CURRENT_XID = "SELECT pg_current_xact_id()::text::bigint"
INSERT_EVENTS = """
INSERT INTO events (id, ticket, type, at, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]::jsonb[])
ON CONFLICT (id) DO NOTHING RETURNING id
"""
# A big batch (an import's 1,000 rows) goes through COPY into a temporary table, then one INSERT ...
# ON CONFLICT: COPY has no ON CONFLICT of its own, and idempotency needs it.
STAGE_EVENTS = """
CREATE TEMP TABLE IF NOT EXISTS events_stage (id text, ticket text, type text, at timestamptz, data text)
ON COMMIT DELETE ROWS
"""
INSERT_STAGED_EVENTS = """
INSERT INTO events (id, ticket, type, at, data)
SELECT id, ticket, type, at, data::jsonb FROM events_stage
ON CONFLICT (id) DO NOTHING RETURNING id
"""
LOAD_EVENTS = "SELECT id, ticket, type, at, data FROM events WHERE ticket = ANY($1::text[]) ORDER BY ticket, at, seq"
LOAD_LADDERS = """
SELECT ticket, rule, cycle, anchor_at, trigger_event, status, reason FROM ladders
WHERE ticket = ANY($1::text[]) ORDER BY ticket, rule, cycle
"""
# For each new `created` event: the caller's other tickets in that category within the window.
COUNT_REPEATS = """
SELECT e.id, count(t.ticket) AS n
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS e(id, ticket, hash, category, at)
LEFT JOIN tickets t ON t.caller_hash = e.hash AND t.category IS NOT DISTINCT FROM e.category
     AND t.ticket <> e.ticket AND t.created_at > e.at - $6::interval AND t.created_at <= e.at
GROUP BY e.id
"""
LOCK_CALLERS = """
SELECT pg_advisory_xact_lock(7345, k) FROM (SELECT DISTINCT hashtext(h) AS k FROM unnest($1::text[]) AS h ORDER BY 1) AS s
"""
LINKED = """
SELECT ticket, created_at FROM tickets
WHERE caller_hash = $1 AND category IS NOT DISTINCT FROM $2 AND created_at > $3 AND created_at <= $4
ORDER BY created_at, ticket
"""
UPDATE_TICKETS = """
UPDATE tickets AS t SET state = v.state::jsonb, status = v.status, unit = v.unit, caller_hash = v.caller_hash,
       category = v.category, created_at = v.created_at, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
     AS v(ticket, state, status, unit, caller_hash, category, created_at)
WHERE t.ticket = v.ticket
"""
# A ticket with no row yet (its advisory lock is held: no one else can insert it meanwhile).
INSERT_TICKETS = """
INSERT INTO tickets (ticket, state, status, unit, caller_hash, category, created_at, updated_at)
SELECT v.*, now() FROM unnest($1::text[], $2::text[]::jsonb[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
     AS v(ticket, state, status, unit, caller_hash, category, created_at)
"""
# The desk's deadline index (supervisor/desk/index.py), written with the state: src_updated_at is
# now(), the transaction's start, the same value UPDATE_TICKETS and INSERT_TICKETS gave tickets.updated_at.
UPSERT_DESK_DEADLINES = """
INSERT INTO desk_deadlines (ticket, sign_by, reply_by, commitment_due, policy, status, unit,
                            signed_at, replied_at, src_updated_at)
SELECT *, now() FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[],
                            $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])
ON CONFLICT (ticket) DO UPDATE SET sign_by = EXCLUDED.sign_by, reply_by = EXCLUDED.reply_by,
    commitment_due = EXCLUDED.commitment_due, policy = EXCLUDED.policy, status = EXCLUDED.status,
    unit = EXCLUDED.unit, signed_at = EXCLUDED.signed_at, replied_at = EXCLUDED.replied_at,
    src_updated_at = EXCLUDED.src_updated_at
"""
INSERT_LADDERS = """
INSERT INTO ladders (ticket, rule, cycle, anchor_at, trigger_event)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[])
ON CONFLICT DO NOTHING
"""
STOP_LADDERS = """
UPDATE ladders AS l SET status = v.status, reason = v.reason
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[]) AS v(ticket, rule, cycle, status, reason)
WHERE l.ticket = v.ticket AND l.rule = v.rule AND l.cycle = v.cycle AND l.status = 'active'
"""
CANCEL_TIMERS = """
UPDATE timers AS t SET status = 'cancelled'
FROM unnest($1::text[], $2::text[], $3::int[]) AS v(ticket, rule, cycle)
WHERE t.ticket = v.ticket AND t.rule = v.rule AND t.cycle = v.cycle AND t.status = 'pending'
"""
# A replanned step keeps its row: only a pending one moves. A fired one is never re-armed.
UPSERT_TIMERS = """
INSERT INTO timers (ticket, rule, cycle, step, rep, due_at, urgent)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::timestamptz[], $7::bool[])
ON CONFLICT (ticket, rule, cycle, step, rep) DO UPDATE SET due_at = EXCLUDED.due_at, urgent = EXCLUDED.urgent
WHERE timers.status = 'pending' AND (timers.due_at <> EXCLUDED.due_at OR timers.urgent <> EXCLUDED.urgent)
"""
# The claim, and what firing the claimed timers needs, in one statement (one round trip, not
# three): each claimed timer with
# - `later_due`: a later step of the same ladder is pending and due too, so this one may be
#   superseded (engine/timers.py); asked of the claimed rows only, not of every row the scan
#   meets (also those another claimer holds and SKIP LOCKED passes over);
# - its ladder when it is active (NULL columns otherwise: the timer is cancelled); `status` is
#   the ladder's (pg._ladder reads the row);
# - its ticket's state in jsonb's binary form (jsonb_send: a version byte, then the text in the
#   client's encoding, UTF-8; jsoncodec.loads_jsonb decodes it), only where the timer will fire
#   as far as this statement can tell: active ladder, and not (later_due and past the grace $3).
#   engine.timers.verdict decides; a firing ticket whose state did not come (none stored) is
#   read with LOAD_STATES (PgStore.fire_due).
# LATERAL joins are nested loops over the claimed rows, in the claim's order. (OFFSET 0 keeps the
# subquery `c` a subquery: pulled up, its `later_due` would be asked twice a row, once per use.)
CLAIM_DUE = """
SELECT c.id, c.ticket, c.rule, c.cycle, c.step, c.rep, c.due_at, c.later_due,
       l.anchor_at, l.trigger_event, l.status, l.reason,
       CASE WHEN l.status IS NOT NULL AND NOT (c.later_due AND $1 - c.due_at > $3::interval)
            THEN (SELECT jsonb_send(k.state) FROM tickets k WHERE k.ticket = c.ticket) END AS state
FROM (SELECT t.*,
             EXISTS (SELECT 1 FROM timers n
                     WHERE n.ticket = t.ticket AND n.rule = t.rule AND n.cycle = t.cycle
                       AND (n.step, n.rep) > (t.step, t.rep) AND n.status = 'pending' AND n.due_at <= $1) AS later_due
      FROM (SELECT t.id, t.ticket, t.rule, t.cycle, t.step, t.rep, t.due_at
            FROM timers t
            WHERE t.status = 'pending' AND t.due_at <= $1 {lane}
            ORDER BY t.urgent DESC, t.due_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED) AS t
      OFFSET 0) AS c
LEFT JOIN LATERAL (SELECT anchor_at, trigger_event, status, reason FROM ladders
                   WHERE ticket = c.ticket AND rule = c.rule AND cycle = c.cycle AND status = 'active') AS l ON true
"""
# The scheduler's lanes (issue 23): the urgent lane claims only urgent timers, the ordinary lane
# only the others (index timers_due_urgent, migration 005, serves all three).
_TIMER_LANES = {None: "", "urgent": "AND t.urgent", "ordinary": "AND NOT t.urgent"}
CLAIM_DUE_LANES = {lane: CLAIM_DUE.format(lane=cond) for lane, cond in _TIMER_LANES.items()}
CLAIM_DUE = CLAIM_DUE_LANES[None]
# fire_due: the firing tickets' states in jsonb's binary form (jsonb_send: a version byte, then
# the text in the client's encoding, UTF-8), as bytea, which jsoncodec.loads_jsonb decodes as
# they come; through the jsonb codec a state reaches the client as a str, decoded from those
# bytes, that orjson then encodes back to UTF-8 (about 2.7 us a state).
LOAD_STATES = "SELECT ticket, jsonb_send(state) AS state FROM tickets WHERE ticket = ANY($1::text[])"
MARK_TIMERS = """
UPDATE timers AS t SET status = v.status, fired_at = $1, late_s = v.late_s
FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS v(id, status, late_s)
WHERE t.id = v.id
"""
# `params`: the parameters of the provider-registered SMS templates (migration 007), or NULL. A row
# that already exists keeps what it was queued with.
INSERT_OUTBOX = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent, note, not_before, created_at, params)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::timestamptz[], $15::timestamptz[],
                     $16::text[]::jsonb[])
ON CONFLICT DO NOTHING
"""
# fire_due: the batch's messages queued and its timers marked (MARK_TIMERS) in one statement
INSERT_OUTBOX_MARK_TIMERS = """
WITH marked AS (
  UPDATE timers AS t SET status = v.status, fired_at = $17, late_s = v.late_s
  FROM unnest($18::bigint[], $19::text[], $20::float8[]) AS v(id, status, late_s)
  WHERE t.id = v.id
)""" + INSERT_OUTBOX
# The same, the messages given as one JSON array of rows (INSERT_OUTBOX's columns in order, the
# times as text, params as a JSON value or null): one parameter, where sixteen arrays cost the
# client several microseconds a message to encode (pg_outbox.py, _outbox_rows). It comes as the
# UTF-8 bytes orjson writes (bytea; convert_from checks them as a text parameter is checked), not
# as a str the client would decode from them and encode back. Rows are inserted in the array's
# order, as unnest gives them.
INSERT_OUTBOX_ROWS_MARK_TIMERS = """
WITH marked AS (
  UPDATE timers AS t SET status = v.status, fired_at = $2, late_s = v.late_s
  FROM unnest($3::bigint[], $4::text[], $5::float8[]) AS v(id, status, late_s)
  WHERE t.id = v.id
)
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent, note, not_before, created_at, params)
SELECT r->>0, r->>1, (r->>2)::int, (r->>3)::int, (r->>4)::int, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10,
       (r->>11)::bool, r->>12, (r->>13)::timestamptz, (r->>14)::timestamptz, NULLIF(r->15, 'null'::jsonb)
FROM jsonb_array_elements(convert_from($1::bytea, 'UTF8')::jsonb) WITH ORDINALITY AS m(r, i)
ORDER BY i
ON CONFLICT DO NOTHING
"""
# The earliest pending timer: index timers_due_urgent (urgent DESC, due_at) gives each lane's
# first in one step; over both lanes, the earlier of the two (migration 025 dropped the index
# on due_at alone).
_NEXT_DUE = "SELECT min(due_at) FROM timers WHERE status = 'pending'"
NEXT_DUE_LANES = {
    None: f"SELECT least(({_NEXT_DUE} AND urgent), ({_NEXT_DUE} AND NOT urgent))",
    "urgent": _NEXT_DUE + " AND urgent",
    "ordinary": _NEXT_DUE + " AND NOT urgent",
}
NEXT_DUE = NEXT_DUE_LANES[None]

# --- acknowledgement, replanning ---------------------------------------------------------------

ACK_LADDERS = """
UPDATE ladders SET status = 'acked', acked_by = $3, acked_at = $4, reason = 'acknowledged via ' || $5
WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active'
RETURNING ticket, rule, cycle
"""
ACK_TIMERS = "UPDATE timers SET status = 'cancelled' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'"
ACK_OUTBOX = "UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'"
INSERT_ACK = "INSERT INTO acks (ticket, rule, cycle, by_whom, via, at, steps) VALUES ($1,$2,$3,$4,$5,$6,$7::int[])"
# The steps earlier acknowledgements of a ladder ended: one that would end none more is a repeat.
ACKED_STEPS = "SELECT coalesce(array_agg(DISTINCT s), '{}') FROM acks, unnest(steps) s WHERE ticket=$1 AND rule=$2 AND cycle=$3"
ACKED_RULES = "SELECT DISTINCT rule FROM ladders WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'acked' ORDER BY rule"
# A scoped acknowledgement (core.acks, the rank rule): the active ladders it looks at, locked; the
# whole-covered ones stop; only the covered steps' timers and the covered roles' messages go.
ACK_SCOPE_LADDERS = "SELECT rule, cycle FROM ladders WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active' FOR UPDATE"
ACK_LADDER = "UPDATE ladders SET status = 'acked', acked_by = $4, acked_at = $5, reason = 'acknowledged via ' || $6 WHERE ticket=$1 AND rule=$2 AND cycle=$3"
ACK_STEP_TIMERS = "UPDATE timers SET status = 'cancelled' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending' AND step = ANY($4::int[])"
ACK_ROLE_OUTBOX = "UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending' AND role = ANY($4::text[])"
# Who may acknowledge what: the ticket's state and its open rules (supervisor/acking.py).
ACK_STATE = "SELECT state FROM tickets WHERE ticket = $1"
ACK_OPEN_RULES = "SELECT DISTINCT rule FROM ladders WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active' ORDER BY rule"
OPEN_TICKETS = "SELECT ticket FROM tickets WHERE status <> 'closed' AND ticket > $1 ORDER BY ticket LIMIT $2 FOR UPDATE"
PENDING_TIMERS = "SELECT id, ticket, rule, cycle, step, rep FROM timers WHERE ticket = ANY($1::text[]) AND status = 'pending'"
CANCEL_TIMER_IDS = "UPDATE timers SET status = 'cancelled' WHERE id = ANY($1::bigint[])"

# --- ingest through the API: an id reused for another event is a 409 ------------------------------

EVENTS_BY_ID = "SELECT id, ticket, type, at, data FROM events WHERE id = ANY($1::text[])"

# --- same matter (pg_matter.py; table matter_keys, migration 008) ------------------------------

# Per key ($1 kinds, $2 keys), its most recent `$5` tickets created in ($3, $4] (index
# matter_keys_lookup, read backwards).
MATTER_LOOKUP = """
SELECT k.kind, k.key, m.ticket, m.created_at, m.caller_hash, m.address_key, m.summary_key
FROM unnest($1::text[], $2::text[]) AS k(kind, key)
CROSS JOIN LATERAL (
    SELECT ticket, created_at, caller_hash, address_key, summary_key FROM matter_keys m
    WHERE m.kind = k.kind AND m.key = k.key AND m.created_at > $3 AND m.created_at <= $4
    ORDER BY m.created_at DESC LIMIT $5
) m
"""
MATTER_INSERT = """
INSERT INTO matter_keys (kind, key, ticket, created_at, caller_hash, address_key, summary_key)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[])
ON CONFLICT (kind, key, ticket) DO NOTHING
"""
# Per held key ($1 kinds, $2 keys), its rows written by transactions from $3 on (xid8 as text), and
# the oldest transaction still running now, the keys' next $3 (storage/matter_cache.py). At least
# one row per key (NULL ticket: nothing new).
MATTER_SINCE = """
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, k.kind, k.key, m.ticket, m.created_at,
       m.caller_hash, m.address_key, m.summary_key
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(kind, key, since)
LEFT JOIN LATERAL (
    SELECT ticket, created_at, caller_hash, address_key, summary_key FROM matter_keys m
    WHERE m.kind = k.kind AND m.key = k.key AND m.xid >= k.since::xid8
) m ON true
"""
MATTER_XMIN = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
# Two batches about one matter must see each other: the second waits for the first to commit.
MATTER_LOCK_KEYS = """
SELECT pg_advisory_xact_lock(7346, k) FROM (SELECT DISTINCT hashtext(h) AS k FROM unnest($1::text[]) AS h ORDER BY 1) AS s
"""
MATTER_TICKET = "SELECT state FROM tickets WHERE ticket = $1"

# --- the ticket view ---------------------------------------------------------------------------

VIEW_TICKET = "SELECT state, status, caller_hash, category FROM tickets WHERE ticket = $1"
VIEW_EVENTS = (
    "SELECT id, type, at, data, received_at FROM events WHERE ticket = $1 ORDER BY at, seq"
)
VIEW_LADDERS = "SELECT rule, cycle, anchor_at, status, reason, acked_by, acked_at FROM ladders WHERE ticket = $1 ORDER BY rule, cycle"
VIEW_TIMERS = "SELECT rule, cycle, step, rep, due_at, status, fired_at FROM timers WHERE ticket = $1 ORDER BY due_at"
VIEW_OUTBOX = "SELECT rule, cycle, step, role, recipient, channel, text, status, created_at, sent_at FROM outbox WHERE ticket = $1 ORDER BY id"
VIEW_LINKED = "SELECT ticket FROM tickets WHERE caller_hash = $1 AND category IS NOT DISTINCT FROM $2 AND ticket <> $3 ORDER BY created_at"

# --- reports, heartbeats, health ---------------------------------------------------------------

CLAIM_REPORT_RUN = (
    "INSERT INTO report_runs (report, period) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1"
)
# What a report reads, filtered in SQL; the report filters again on the decoded state.
REPORT_STATES = {
    "digest": "SELECT state FROM tickets WHERE status IN ('dispatched', 'signed', 'reopened')",
    "look_back": """
        SELECT state FROM tickets
        WHERE ((state->>'dissatisfied_count')::int > 0 OR (state->>'reopened_count')::int > 0)
          AND updated_at > $1
    """,
}

# Provider outages (migration 022): each daemon writes what its breaker sees; the readers keep
# the rows of daemons still alive (a heartbeat within the given time).
OUTAGE_BEGAN = """
INSERT INTO provider_outages (provider, daemon, since) VALUES ($1, $2, $3)
ON CONFLICT (provider, daemon) DO NOTHING
"""
OUTAGE_ENDED = "DELETE FROM provider_outages WHERE provider = $1"
OUTAGES = """
SELECT o.provider, min(o.since) AS since FROM provider_outages o
JOIN heartbeats h ON h.daemon = o.daemon AND h.beat_at > $1
GROUP BY o.provider
"""
HEARTBEAT = """
INSERT INTO heartbeats (daemon, beat_at) VALUES ($1, $2)
ON CONFLICT (daemon) DO UPDATE SET beat_at = EXCLUDED.beat_at
"""
PING = "SELECT 1"

# --- what the demo shows, and demo data (tickets tagged DEMO-, tools/demo_data.py) -----------------

DEMO_MESSAGES = """
SELECT ticket, rule, step, role, channel, urgent, status, created_at FROM outbox
WHERE ticket LIKE $1 ORDER BY created_at, id
"""
COUNT_DEMO = "SELECT count(*) FROM tickets WHERE ticket LIKE $1"
SILENCE_DEMO_TIMERS = "UPDATE timers SET status = 'cancelled' WHERE ticket LIKE $1 AND status = 'pending'"
SILENCE_DEMO_OUTBOX = "UPDATE outbox SET status = 'cancelled', last_error = 'demo data' WHERE ticket LIKE $1 AND status = 'pending'"
SILENCE_DEMO_LADDERS = "UPDATE ladders SET status = 'stopped', reason = 'demo data' WHERE ticket LIKE $1 AND status = 'active'"
# Every table with a `ticket` column holds per-ticket data (no foreign keys tie them).
TICKET_TABLES = """
SELECT table_name FROM information_schema.columns
WHERE column_name = 'ticket' AND table_schema = current_schema()
  AND table_name IN (SELECT table_name FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')
ORDER BY table_name
"""
# {table}: a name TICKET_TABLES returned (quoted), never input
DELETE_DEMO_ROWS = 'DELETE FROM "{table}" WHERE ticket LIKE $1'


HELD = "SELECT recipient, channel, text, not_before FROM outbox WHERE status = 'pending' AND not_before > $1 ORDER BY id"
COUNT_SENT = "SELECT count(*) FROM outbox WHERE status = 'sent'"

# --- the outbox ----------------------------------------------------------------------------------

_COLUMNS = (
    "id, ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent,"
    " attempts, claimed_at, last_error, in_flight, created_at, params"
)
# Messages of ladders acknowledged or stopped since they were queued are not sent. (PgStore.ack
# cancels pending rows itself; this catches rows that came back to pending from a retry.)
# `urgent IN (true, false)`, always true, lets index outbox_ready_urgent (urgent DESC,
# not_before, id) read only the ready rows of each value, not the held ones too.
CANCEL_STOPPED = """
WITH s AS (
    SELECT o.id, l.status FROM outbox o
    JOIN ladders l ON l.ticket = o.ticket AND l.rule = o.rule AND l.cycle = o.cycle
    WHERE o.status = 'pending' AND o.urgent IN (true, false) AND o.not_before <= $1 AND l.status <> 'active'
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET status = 'cancelled', last_error = 'ladder ' || s.status FROM s
WHERE outbox.id = s.id
"""
CLAIM_READY = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND not_before <= $1 {{lane}}
ORDER BY urgent DESC, not_before, id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
# The dispatcher's lanes (issue 23), as the scheduler's; ordinary rows keep their order
# (not_before, id) in every lane. Index outbox_ready_urgent (migration 005).
_ROW_LANES = {None: "", "urgent": "AND urgent", "ordinary": "AND NOT urgent"}
CLAIM_READY_LANES = {lane: CLAIM_READY.format(lane=cond) for lane, cond in _ROW_LANES.items()}
CLAIM_READY = CLAIM_READY_LANES[None]
# The rest of a group: pending non-urgent rows for the same person and channel that would become
# ready within the window anyway (Alertmanager's group_wait, see delivery.py).
JOIN_GROUP = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND NOT urgent AND not_before <= $1
  AND (channel, coalesce(address, recipient)) IN (SELECT * FROM unnest($2::text[], $3::text[]))
  AND id <> ALL($4::bigint[])
ORDER BY not_before, id
LIMIT $5
FOR UPDATE SKIP LOCKED
"""
MARK_SENDING = """
UPDATE outbox AS o SET status = 'sending', claimed_at = $1, claimed_by = $2, group_id = v.lead
FROM unnest($3::bigint[], $4::bigint[]) AS v(id, lead)
WHERE o.id = v.id
"""
# The lead row's lock stands for its group's: only one worker reconciles a group.
CLAIM_STALE = """
SELECT id FROM outbox
WHERE status = 'sending' AND claimed_at < $1 AND coalesce(group_id, id) = id
ORDER BY claimed_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
GROUP_ROWS = f"""
SELECT coalesce(group_id, id) AS lead, {_COLUMNS} FROM outbox
WHERE coalesce(group_id, id) = ANY($1::bigint[]) AND status = 'sending'
ORDER BY id
"""
RESTAMP = """
UPDATE outbox SET claimed_at = $1, claimed_by = $2, group_id = coalesce(group_id, id)
WHERE coalesce(group_id, id) = ANY($3::bigint[]) AND status = 'sending'
"""
# Just before a send: still ours? The new claim time is also the `since` of a later reconcile.
TOUCH = """
WITH t AS (
    UPDATE outbox SET claimed_at = $2, attempts = attempts + 1, in_flight = true
    WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
    RETURNING id, channel, address
)
INSERT INTO outbox_attempts (lead, channel, address, started_at)
SELECT $1, channel, address, $2 FROM t LIMIT 1
RETURNING id
"""
# One unconfirmed call per number (delivery/outbox.py ONE_AT_A_TIME): the group's channel and
# address, then whether another group's message to that address on that channel is in flight.
LINE_OF = "SELECT channel, address FROM outbox WHERE id = $1"
LINE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('line|' || $1 || '|' || coalesce($2, '')))"
LINE_BUSY = """
SELECT EXISTS (SELECT 1 FROM outbox
               WHERE status = 'sending' AND in_flight AND channel = $1
                 AND address IS NOT DISTINCT FROM $2 AND coalesce(group_id, id) <> $3)
"""
# The rows of a call's group (any status), in order: what the call said and to whom; and the key
# pressed during it (POST /twilio/gather), on every row of the group.
CALL_ROWS = f"""
SELECT {_COLUMNS} FROM outbox
WHERE coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
ORDER BY id
"""
RECORD_KEYPRESS = """
UPDATE outbox SET keypress = $2, keypress_result = $3, keypress_at = $4
WHERE coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
"""
# What came of the latest attempt of a group (a reconciliation or a callback may name its id).
RECORD_ATTEMPT = """
UPDATE outbox_attempts SET outcome = $2, provider_id = coalesce(provider_id, $3)
WHERE id = (SELECT max(id) FROM outbox_attempts WHERE lead = $1)
"""
# A provider id learnt from a status callback: it names the group's unresolved attempt, or else
# is written down as an attempt of its own, so that no other row's reconciliation takes it.
CALLBACK_ATTEMPT = """
UPDATE outbox_attempts SET provider_id = $2, outcome = coalesce(outcome, 'callback')
WHERE id = (SELECT max(id) FROM outbox_attempts
            WHERE lead = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
              AND provider_id IS NULL AND (outcome IS NULL OR outcome = 'unknown'))
  AND NOT EXISTS (SELECT 1 FROM outbox_attempts WHERE provider_id = $2)
RETURNING id
"""
INSERT_CALLBACK_ATTEMPT = """
INSERT INTO outbox_attempts (lead, channel, address, started_at, outcome, provider_id)
SELECT coalesce(group_id, id), channel, address, $3, 'callback', $2 FROM outbox WHERE id = $1
  AND NOT EXISTS (SELECT 1 FROM outbox_attempts WHERE provider_id = $2)
"""
# 'sent' is the truth whoever holds the claim; a callback may have marked the row failed already.
RECORD_SENT = """
UPDATE outbox SET status = 'sent', provider_id = $2, sent_at = $3, last_error = NULL, in_flight = false
WHERE group_id = $1 AND status = 'sending'
"""
RECORD_RETRY = """
UPDATE outbox SET status = 'pending', not_before = $2, last_error = $3, claimed_by = NULL, in_flight = false
WHERE group_id = $1 AND status = 'sending' AND claimed_by = $4
"""
# A provider is back: the rows that waited for it (last_error starting with its held reason)
# go now, urgent first as always; not those that also wait for quiet hours (beyond `within`).
RELEASE_HELD = """
UPDATE outbox SET not_before = $3
WHERE status = 'pending' AND channel = ANY($1::text[]) AND starts_with(last_error, $2)
  AND not_before > $3 AND not_before <= $3 + $4::interval
"""
RECORD_UNKNOWN = """
UPDATE outbox SET last_error = $2 WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
"""
FAIL_GROUP = """
UPDATE outbox SET status = 'failed', last_error = $2, in_flight = false
WHERE coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
  AND status = ANY($3::text[])
RETURNING id, channel, recipient
"""
# Same key on another channel; not for a ladder that was acknowledged or stopped meanwhile. The
# template parameters (`params`) are the SMS provider's, so a fallback row goes without them; a
# fallback call reads the script rendered for it when the step fired (params "voice", "call":
# core/firing.py), not the SMS text.
INSERT_FALLBACK = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text,
                    urgent, note, not_before, created_at, params)
SELECT o.ticket, o.rule, o.cycle, o.step, o.rep, o.role, o.recipient, o.name, o.address, $2,
       CASE WHEN $2 = 'voice' AND o.params ? 'voice' THEN o.params->>'voice' ELSE o.text END,
       o.urgent, $3, CASE WHEN o.urgent THEN $4::timestamptz ELSE $5::timestamptz END, $4,
       CASE WHEN $2 = 'voice' AND o.params ? 'call'
            THEN jsonb_build_object('call', o.params->'call') END
FROM outbox o
WHERE o.id = ANY($1::bigint[])
  AND NOT EXISTS (SELECT 1 FROM ladders l WHERE l.ticket = o.ticket AND l.rule = o.rule
                  AND l.cycle = o.cycle AND l.status <> 'active')
ON CONFLICT DO NOTHING
RETURNING id
"""
# Other unresolved attempts to the same person around the same moment: a provider that cannot
# compare content (voice) could not tell their calls apart.
# Attempts of other rows to the same person around the same moment whose outcome is unresolved
# (no provider id, not a definite refusal): a message found at the provider could be theirs.
# $6: the text, for channels whose provider records keep it (NULL: any text, e.g. calls).
OVERLAPPING = """
SELECT count(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.lead
WHERE a.address IS NOT DISTINCT FROM $1 AND a.channel = $2 AND a.lead <> $3
  AND a.started_at BETWEEN $4 AND $5
  AND a.provider_id IS NULL AND (a.outcome IS NULL OR a.outcome = 'unknown')
  AND ($6::text IS NULL OR o.text = $6)
"""
# Provider ids that belong to OTHER messages to this person ($4: the group being reconciled, whose
# own ids, e.g. a SID written to the ledger just before a kill, are what find_sent must find).
KNOWN_IDS = """
SELECT provider_id FROM outbox
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND provider_id IS NOT NULL AND sent_at >= $3
  AND ($4::bigint IS NULL OR coalesce(group_id, id) <> $4)
UNION
SELECT provider_id FROM outbox_attempts
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND provider_id IS NOT NULL AND started_at >= $3
  AND ($4::bigint IS NULL OR lead <> $4)
"""
# When the group's latest hand-over began: the `since` of its reconciliation. Not claimed_at, which
# a reconciler re-stamps when it takes the row over (and may be killed before asking).
ATTEMPT_STARTED = """
SELECT max(started_at) FROM outbox_attempts WHERE lead = $1 AND outcome IS DISTINCT FROM 'callback'
"""
# The earliest pending message: per value of `urgent`, the first of index outbox_ready_urgent.
NEXT_READY = """
SELECT least((SELECT min(not_before) FROM outbox WHERE status = 'pending' AND urgent),
             (SELECT min(not_before) FROM outbox WHERE status = 'pending' AND NOT urgent),
             (SELECT min(claimed_at) FROM outbox WHERE status = 'sending') + $1::interval)
"""
# The urgent lane reconciles nothing (stale claims are the ordinary lane's): its next row only.
NEXT_READY_URGENT = "SELECT min(not_before) FROM outbox WHERE status = 'pending' AND urgent"

# --- Twilio status callbacks and replies ---------------------------------------------------------

# A row by our key (preferred: it survives a lost create answer) or by Twilio's SID.
FIND_ROW = """
SELECT id FROM outbox
WHERE ($1::bigint IS NOT NULL AND id = $1) OR ($2::text IS NOT NULL AND provider_id = $2)
ORDER BY ($1::bigint IS NOT NULL AND id = $1) DESC, id
LIMIT 1
"""
_GROUP = "coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)"
# Any callback proves Twilio accepted the message: a 'sending' row whose create answer was lost
# becomes 'sent' here. A final delivery status is not overwritten by a late interim one.
RECORD_STATUS = f"""
UPDATE outbox SET
    delivery_status = CASE WHEN delivery_status = ANY($4::text[]) THEN delivery_status ELSE $2 END,
    delivered_at = CASE WHEN $2 = ANY($5::text[]) THEN coalesce(delivered_at, $7::timestamptz) ELSE delivered_at END,
    status = CASE WHEN status = 'sending' AND NOT ($2 = ANY($6::text[])) THEN 'sent' ELSE status END,
    sent_at = CASE WHEN status = 'sending' AND NOT ($2 = ANY($6::text[])) THEN $7::timestamptz ELSE sent_at END,
    provider_id = coalesce(provider_id, $3)
WHERE {_GROUP}
"""
MARK_FAILED = f"""
UPDATE outbox SET status = 'failed', last_error = $2
WHERE {_GROUP} AND status IN ('sending', 'sent')
"""
# The latest message to this number whose ladder still runs: the one a reply answers.
LATEST_SENT = """
SELECT o.ticket, o.rule, o.recipient FROM outbox o
JOIN ladders l ON l.ticket = o.ticket AND l.rule = o.rule AND l.cycle = o.cycle
WHERE o.address = $1 AND o.status = 'sent' AND l.status = 'active'
ORDER BY o.sent_at DESC, o.id DESC
LIMIT 1
"""
# The same, for a reply naming its ticket ("1 A2026..."): that ticket's latest message.
LATEST_SENT_FOR = """
SELECT o.ticket, o.rule, o.recipient FROM outbox o
JOIN ladders l ON l.ticket = o.ticket AND l.rule = o.rule AND l.cycle = o.cycle
WHERE o.address = $1 AND o.status = 'sent' AND l.status = 'active' AND o.ticket = $2
ORDER BY o.sent_at DESC, o.id DESC
LIMIT 1
"""
# The roles this person was addressed as on the ticket (a supervisor standing in for a head).
ROLES_SENT = "SELECT DISTINCT role FROM outbox WHERE ticket = $1 AND recipient = $2 AND status = 'sent'"
