"""Every SQL statement of the PostgreSQL store, named. PgStore (pg.py, pg_outbox.py) runs these
and nothing else; bench/ reads them to EXPLAIN the hot ones."""

# ruff: noqa: E501

# --- ingest, firing ------------------------------------------------------------------------------

LOCK_TICKETS = """
INSERT INTO tickets (ticket, state, status) SELECT t, '{}'::jsonb, 'new' FROM unnest($1::text[]) AS t
ON CONFLICT (ticket) DO NOTHING;
"""
SELECT_FOR_UPDATE = (
    "SELECT ticket, state FROM tickets WHERE ticket = ANY($1::text[]) ORDER BY ticket FOR UPDATE"
)
INSERT_EVENTS = """
INSERT INTO events (id, ticket, type, at, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]::jsonb[])
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
INSERT INTO timers (ticket, rule, cycle, step, rep, due_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::timestamptz[])
ON CONFLICT (ticket, rule, cycle, step, rep) DO UPDATE SET due_at = EXCLUDED.due_at
WHERE timers.status = 'pending' AND timers.due_at <> EXCLUDED.due_at
"""
CLAIM_DUE = """
SELECT t.id, t.ticket, t.rule, t.cycle, t.step, t.rep, t.due_at,
       EXISTS (SELECT 1 FROM timers l
               WHERE l.ticket = t.ticket AND l.rule = t.rule AND l.cycle = t.cycle
                 AND (l.step, l.rep) > (t.step, t.rep) AND l.status = 'pending' AND l.due_at <= $1) AS later_due
FROM timers t
WHERE t.status = 'pending' AND t.due_at <= $1
ORDER BY t.due_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
LOAD_STATES = "SELECT ticket, state FROM tickets WHERE ticket = ANY($1::text[])"
MARK_TIMERS = """
UPDATE timers AS t SET status = v.status, fired_at = $1, late_s = v.late_s
FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS v(id, status, late_s)
WHERE t.id = v.id
"""
INSERT_OUTBOX = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent, note, not_before, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::timestamptz[], $15::timestamptz[])
ON CONFLICT DO NOTHING
"""
NEXT_DUE = "SELECT min(due_at) FROM timers WHERE status = 'pending'"

# --- acknowledgement, replanning ---------------------------------------------------------------

ACK_LADDERS = """
UPDATE ladders SET status = 'acked', acked_by = $3, acked_at = $4, reason = 'acknowledged via ' || $5
WHERE ticket = $1 AND ($2::text IS NULL OR rule = $2) AND status = 'active'
RETURNING ticket, rule, cycle
"""
ACK_TIMERS = "UPDATE timers SET status = 'cancelled' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'"
ACK_OUTBOX = "UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged' WHERE ticket=$1 AND rule=$2 AND cycle=$3 AND status='pending'"
INSERT_ACK = "INSERT INTO acks (ticket, rule, cycle, by_whom, via, at) VALUES ($1,$2,$3,$4,$5,$6)"
OPEN_TICKETS = "SELECT ticket FROM tickets WHERE status <> 'closed' AND ticket > $1 ORDER BY ticket LIMIT $2 FOR UPDATE"
PENDING_TIMERS = "SELECT id, ticket, rule, cycle, step, rep FROM timers WHERE ticket = ANY($1::text[]) AND status = 'pending'"
CANCEL_TIMER_IDS = "UPDATE timers SET status = 'cancelled' WHERE id = ANY($1::bigint[])"

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

HEARTBEAT = """
INSERT INTO heartbeats (daemon, beat_at) VALUES ($1, $2)
ON CONFLICT (daemon) DO UPDATE SET beat_at = EXCLUDED.beat_at
"""
PING = "SELECT 1"

# --- what the demo shows -------------------------------------------------------------------------

HELD = "SELECT recipient, channel, text, not_before FROM outbox WHERE status = 'pending' AND not_before > $1 ORDER BY id"
COUNT_SENT = "SELECT count(*) FROM outbox WHERE status = 'sent'"

# --- the outbox ----------------------------------------------------------------------------------

_COLUMNS = (
    "id, ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text, urgent,"
    " attempts, claimed_at, last_error, in_flight"
)
# Messages of ladders acknowledged or stopped since they were queued are not sent. (PgStore.ack
# cancels pending rows itself; this catches rows that came back to pending from a retry.)
CANCEL_STOPPED = """
WITH s AS (
    SELECT o.id, l.status FROM outbox o
    JOIN ladders l ON l.ticket = o.ticket AND l.rule = o.rule AND l.cycle = o.cycle
    WHERE o.status = 'pending' AND o.not_before <= $1 AND l.status <> 'active'
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET status = 'cancelled', last_error = 'ladder ' || s.status FROM s
WHERE outbox.id = s.id
"""
CLAIM_READY = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND not_before <= $1
ORDER BY urgent DESC, not_before, id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
# The rest of a group: pending non-urgent rows for the same person and channel that would become
# ready within the window anyway (Alertmanager's group_wait, see delivery.py).
JOIN_GROUP = f"""
SELECT {_COLUMNS} FROM outbox
WHERE status = 'pending' AND NOT urgent AND not_before <= $1
  AND (channel, coalesce(address, recipient)) IN (SELECT * FROM unnest($2::text[], $3::text[]))
  AND id <> ALL($4::bigint[])
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
UPDATE outbox SET claimed_at = $2, attempts = attempts + 1, in_flight = true
WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
RETURNING id
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
RECORD_UNKNOWN = """
UPDATE outbox SET last_error = $2 WHERE group_id = $1 AND status = 'sending' AND claimed_by = $3
"""
FAIL_GROUP = """
UPDATE outbox SET status = 'failed', last_error = $2, in_flight = false
WHERE coalesce(group_id, id) = (SELECT coalesce(group_id, id) FROM outbox WHERE id = $1)
  AND status = ANY($3::text[])
RETURNING id, channel
"""
# Same key on another channel; not for a ladder that was acknowledged or stopped meanwhile.
INSERT_FALLBACK = """
INSERT INTO outbox (ticket, rule, cycle, step, rep, role, recipient, name, address, channel, text,
                    urgent, note, not_before, created_at)
SELECT o.ticket, o.rule, o.cycle, o.step, o.rep, o.role, o.recipient, o.name, o.address, $2, o.text,
       o.urgent, $3, CASE WHEN o.urgent THEN $4::timestamptz ELSE $5::timestamptz END, $4
FROM outbox o
WHERE o.id = ANY($1::bigint[])
  AND NOT EXISTS (SELECT 1 FROM ladders l WHERE l.ticket = o.ticket AND l.rule = o.rule
                  AND l.cycle = o.cycle AND l.status <> 'active')
ON CONFLICT DO NOTHING
RETURNING id
"""
# Other unresolved attempts to the same person around the same moment: a provider that cannot
# compare content (voice) could not tell their calls apart.
OVERLAPPING = """
SELECT count(*) FROM outbox
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND status = 'sending' AND in_flight
  AND coalesce(group_id, id) <> $3 AND claimed_at BETWEEN $4 AND $5
"""
KNOWN_IDS = """
SELECT DISTINCT provider_id FROM outbox
WHERE address IS NOT DISTINCT FROM $1 AND channel = $2 AND provider_id IS NOT NULL AND sent_at >= $3
"""
NEXT_READY = """
SELECT least((SELECT min(not_before) FROM outbox WHERE status = 'pending'),
             (SELECT min(claimed_at) FROM outbox WHERE status = 'sending') + $1::interval)
"""

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
