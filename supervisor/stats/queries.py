"""The SQL aggregates of the monthly statistics, one named query per figure.

Parameters throughout: $1 the period's start, $2 its end (exclusive), $3 the cut-off for "the
deadline has passed" (the period's end, or now when the period is not over). Grouping sets give
the total (unit NULL, GROUPING = 1) and the per-unit rows in one pass.
"""

RECEIVED = """
SELECT GROUPING(category) AS g_cat, GROUPING(channel) AS g_ch, GROUPING(kind) AS g_kind,
       GROUPING(grid) AS g_grid, category, channel, kind, grid, coalesce(sum(n), 0)::bigint AS n
FROM (SELECT data->>'category' AS category, data->>'channel' AS channel, data->>'kind' AS kind,
             data->>'grid' AS grid, count(*) AS n
      FROM events WHERE type = 'created' AND at >= $1 AND at < $2
      GROUP BY 1, 2, 3, 4) c  -- one hash aggregate of the combinations first, then the sets
GROUP BY GROUPING SETS ((category), (channel), (kind), (grid), ())
"""

RECEIVED_TOTAL = "SELECT count(*) FROM events WHERE type = 'created' AND at >= $1 AND at < $2"

# 签收及时率: dispatches in the period whose sign-off deadline passed (or that were signed) by the
# cut-off; on time when signed by the deadline.
SIGN_OFF = """
SELECT GROUPING(unit) AS total, unit,
       count(*) FILTER (WHERE (sign_due < $3 OR signed_at < $3)
                        AND signed_at < $3 AND (sign_due IS NULL OR signed_at <= sign_due)) AS num,
       count(*) FILTER (WHERE sign_due < $3 OR signed_at < $3) AS den,
       count(*) AS dispatches
FROM stats_dispatches
WHERE at >= $1 AND at < $2
GROUP BY GROUPING SETS ((unit), ())
"""

# 按时办结率: first replies of handlings in the period, plus handlings whose deadline fell in the
# period unreplied by its end (the deadline the period knew: a later extension does not move it).
# 办结量 is the first kind alone.
ON_TIME = """
WITH h AS (
    SELECT unit, reply_unit, (replied_at >= $1 AND replied_at < $2) AS replied,
           (replied_at >= $1 AND replied_at < $2 AND (reply_due IS NULL OR replied_at <= reply_due)) AS on_time
    FROM stats_handlings
    WHERE (replied_at >= $1 AND replied_at < $2)
       OR ((CASE WHEN due_since >= $2 THEN prev_due ELSE reply_due END) >= $1
           AND (CASE WHEN due_since >= $2 THEN prev_due ELSE reply_due END) < $3
           AND (replied_at IS NULL OR replied_at >= $2))
), g AS (  -- a few hundred groups first (a hash aggregate), then the unit each is credited to
    SELECT CASE WHEN replied THEN coalesce(reply_unit, unit) ELSE unit END AS unit, replied, on_time, n
    FROM (SELECT unit, reply_unit, replied, on_time, count(*) AS n FROM h GROUP BY 1, 2, 3, 4) x
)
SELECT GROUPING(unit) AS total, unit, coalesce(sum(n) FILTER (WHERE on_time), 0)::bigint AS num,
       coalesce(sum(n), 0)::bigint AS den, coalesce(sum(n) FILTER (WHERE replied), 0)::bigint AS replies
FROM g GROUP BY GROUPING SETS ((unit), ())
"""

CALLBACKS = """
SELECT GROUPING(unit) AS total, unit, count(*) AS den,
       count(*) FILTER (WHERE satisfaction IN ('satisfied', 'basically_satisfied')) AS satisfied,
       count(*) FILTER (WHERE satisfaction = 'satisfied') AS satisfied_strict,
       count(*) FILTER (WHERE resolved) AS resolved
FROM stats_callbacks WHERE at >= $1 AND at < $2
GROUP BY GROUPING SETS ((unit), ())
"""

REHANDLED = "SELECT count(*) FROM events WHERE type = 'reopened' AND at >= $1 AND at < $2"
HANDLED_3 = "SELECT count(*) FROM stats_tickets WHERE handled3_at >= $1 AND handled3_at < $2"

DISPUTES = """
SELECT GROUPING(unit) AS total, unit, count(*) AS n FROM stats_tickets
WHERE dispute_at >= $1 AND dispute_at < $2 GROUP BY GROUPING SETS ((unit), ())
"""
RETURNS = """
SELECT data->>'unit' AS unit, count(*) AS n FROM events
WHERE type = 'returned' AND at >= $1 AND at < $2 GROUP BY 1
"""

# 重复诉求 and matters (stats/matters.py links them, each matter once): the tickets created from 30
# days before the period to its end, with their keys; the grid and summary key where the matcher
# stored them (matter_keys, kind 'grid'). The caller's hash never leaves the service.
# Only the tickets that can be linked are read: those with a time-neighbour of the same caller and
# category, or of the same address, less than $3 (the window) apart, and those with a grid key;
# the others are matters of one ticket, which the report does not show (matters.group gives the
# same groups without them: tests/integration/test_stats_query_shapes.py).
# The caller and address links are found here, in the windows that choose the tickets: cp (ap)
# is the ticket before of the same caller and category (address) when less than the window apart;
# kinds has bit 1 (2) when that caller's (address's) tickets link any two, or one of them has two
# grid keys (its two rows, linked to each other, linked that key in matters.group). The rows come
# in the order of (created_at, ticket); matters.linked unions the links and compares the grids'
# summaries, giving what matters.group gave from the rows alone. The tickets with two grid keys
# (dup, a few) are looked up in a hash of them, not joined to every ticket read.
MATTER_LINKS = """
WITH dup AS (
    SELECT ticket FROM matter_keys WHERE kind = 'grid' GROUP BY ticket HAVING count(*) > 1
), c AS (
    SELECT *, bool_or(near OR two) OVER (PARTITION BY caller_hash, category) AS linked
    FROM (SELECT s.ticket, s.created_at, s.category, s.caller_hash, s.address_key, s.ticket IN (SELECT ticket FROM dup) AS two,
                 CASE WHEN s.created_at - lag(s.created_at) OVER k < $3::interval THEN lag(s.ticket) OVER k END AS cp,
                 coalesce(s.created_at - lag(s.created_at) OVER k < $3::interval
                          OR lead(s.created_at) OVER k - s.created_at < $3::interval, false) AS near
          FROM stats_tickets s
          WHERE s.caller_hash <> '' AND s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
          WINDOW k AS (PARTITION BY s.caller_hash, s.category ORDER BY s.created_at)) x
), a AS (
    SELECT *, bool_or(near OR two) OVER (PARTITION BY address_key) AS linked
    FROM (SELECT s.ticket, s.created_at, s.category, s.address_key, s.ticket IN (SELECT ticket FROM dup) AS two,
                 CASE WHEN s.created_at - lag(s.created_at) OVER k < $3::interval THEN lag(s.ticket) OVER k END AS cp,
                 coalesce(s.created_at - lag(s.created_at) OVER k < $3::interval
                          OR lead(s.created_at) OVER k - s.created_at < $3::interval, false) AS near
          FROM stats_tickets s
          WHERE s.address_key <> '' AND s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
          WINDOW k AS (PARTITION BY s.address_key ORDER BY s.created_at)) x
), ca AS (  -- the tickets of a linked caller or address (a ticket of neither: only its grid links it)
    SELECT coalesce(c.ticket, a.ticket) AS ticket, coalesce(c.created_at, a.created_at) AS created_at,
           coalesce(c.category, a.category) AS category, coalesce(c.address_key, a.address_key) AS address_key,
           c.cp, a.cp AS ap, coalesce(c.near, false) OR coalesce(a.near, false) AS near,
           CASE WHEN c.linked THEN 1 ELSE 0 END | CASE WHEN a.linked THEN 2 ELSE 0 END AS kinds
    FROM (SELECT * FROM c WHERE linked) c FULL JOIN (SELECT * FROM a WHERE linked) a ON a.ticket = c.ticket
), g AS (
    SELECT s.ticket, s.created_at, s.category, s.address_key, g.key AS grid, g.summary_key
    FROM matter_keys g JOIN stats_tickets s ON s.ticket = g.ticket
    WHERE g.kind = 'grid' AND s.created_at >= $1::timestamptz - interval '30 days' AND s.created_at < $2
)
SELECT coalesce(ca.ticket, g.ticket) AS ticket, coalesce(ca.created_at, g.created_at) AS created_at,
       coalesce(ca.category, g.category) AS category, coalesce(ca.address_key, g.address_key) AS address_key,
       g.grid, g.summary_key, ca.cp, ca.ap, coalesce(ca.kinds, 0) AS kinds
FROM ca FULL JOIN g ON g.ticket = ca.ticket
WHERE ca.near OR g.ticket IS NOT NULL
ORDER BY coalesce(ca.created_at, g.created_at), coalesce(ca.ticket, g.ticket) COLLATE "C"
"""

# 催办 (to the unit: liaison, head) and 督办 (supervisor, leader): a step's messages to one role
# count once, whatever the channels; cancelled ones (acknowledged before they went) do not count.
MESSAGES = """
SELECT GROUPING(unit) AS g_unit, GROUPING(role) AS g_role, unit, role, count(*) AS n
FROM (SELECT DISTINCT t.unit, o.ticket, o.rule, o.cycle, o.step, o.rep, o.role
      FROM outbox o JOIN tickets t ON t.ticket = o.ticket
      WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled'
        AND o.role = ANY($3::text[])) m
GROUP BY GROUPING SETS ((unit), (role), ())
ORDER BY unit, role  -- by_unit and by_role in this order (a sorted aggregate gave it before)
"""
ACKS = """
WITH esc AS (
    SELECT o.ticket, o.rule, o.cycle, min(o.created_at) AS first_at
    FROM outbox o JOIN tickets t ON t.ticket = o.ticket
    WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' AND o.role = ANY($3::text[])
    GROUP BY 1, 2, 3
), acked AS (
    SELECT ticket, rule, cycle, min(at) AS at FROM acks WHERE at >= $1 GROUP BY 1, 2, 3
)
SELECT count(*) AS acknowledged,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.at - e.first_at) / 60) AS median
FROM esc e JOIN acked a USING (ticket, rule, cycle)
"""

COMMITMENTS = """
SELECT count(*) FILTER (WHERE made_at >= $1 AND made_at < $2) AS made,
       count(*) FILTER (WHERE kept_at >= $1 AND kept_at < $2 AND (due IS NULL OR kept_at <= due)) AS kept,
       count(*) FILTER (WHERE due >= $1 AND due < $3 AND (kept_at IS NULL OR kept_at > due)
                        AND (ended_at IS NULL OR ended_at > due)) AS broken
FROM stats_commitments
WHERE (made_at >= $1 AND made_at < $2) OR (kept_at >= $1 AND kept_at < $2) OR (due >= $1 AND due < $3)
"""

OVERDUE_NOW = """
SELECT unit, count(*) AS n FROM stats_tickets WHERE overdue_due < $1 GROUP BY unit
"""

# 答复一次通过率: the first reply with text of each handling (a re-opening starts a new one) made
# in the period, per unit; passed when no review sent it back, or the staff passed or accepted it.
# The first replies are facts the refresh keeps (stats_first_replies, stats/refresh.py): counted
# here, not found by ordering every reply and re-opening of the replied tickets. The ticket's unit
# is looked up only for a reply that named none (COALESCE does not evaluate what it does not need).
FIRST_PASS = """
WITH j AS (
    SELECT coalesce(f.unit, (SELECT t.unit FROM tickets t WHERE t.ticket = f.ticket)) AS unit,
           EXISTS (SELECT 1 FROM events v WHERE v.type = 'reviewed' AND v.data->>'of' = f.event_id
                   AND v.data->>'outcome' = 'returned')
           AND NOT EXISTS (SELECT 1 FROM events d WHERE d.type = 'review_decided'
                           AND d.data->>'of' = f.event_id AND d.data->>'decision' IN ('pass', 'accept'))
           AS sent_back
    FROM stats_first_replies f
    WHERE f.at >= $1 AND f.at < $2
)
SELECT GROUPING(unit) AS total, unit, count(*) FILTER (WHERE NOT sent_back) AS num, count(*) AS den
FROM j GROUP BY GROUPING SETS ((unit), ())
"""

# 答复审核 退回 in the period by reason: each finding's name (the text before "：").
REVIEW_RETURNS = """
SELECT split_part(f, '：', 1) AS reason, count(*) AS n
FROM events e, jsonb_array_elements_text(e.data->'findings') f
WHERE e.type = 'reviewed' AND e.data->>'outcome' = 'returned' AND e.at >= $1 AND e.at < $2
GROUP BY 1 ORDER BY 2 DESC, 1
"""

# The office's own demands (登记诉求: channel visit or grid) registered in the period, and how
# many of them were solved by the period's end: a callback said resolved, or it was closed.
OWN_DEMANDS = """
SELECT c.data->>'channel' AS channel, count(*) AS registered,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM events s WHERE s.ticket = c.ticket AND s.at < $2
           AND ((s.type = 'visited' AND (s.data->>'resolved')::boolean) OR s.type = 'closed'))) AS solved
FROM events c
WHERE c.type = 'created' AND c.data->>'channel' IN ('visit', 'grid') AND c.at >= $1 AND c.at < $2
GROUP BY 1
"""
