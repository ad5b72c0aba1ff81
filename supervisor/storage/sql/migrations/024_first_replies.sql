-- 答复一次通过率 (issue 22): the first reply with text of each handling (a re-opening starts a new
-- one), kept by the stats refresh (stats/refresh.py, FIRST_REPLIES) so the monthly report counts
-- them instead of ordering every reply and re-opening of the replied tickets. In the order of
-- time, a re-opening before a reply of the same instant, then id: a reply is its handling's first
-- when the event just before it (of these two kinds) is no reply. Filled here from the events
-- (a database whose facts are up to date stays so); the refresh replaces a ticket's rows with its
-- other facts.
CREATE TABLE IF NOT EXISTS stats_first_replies (
    event_id text PRIMARY KEY,          -- the reply (reviews name it in data->>'of')
    ticket   text NOT NULL,
    at       timestamptz NOT NULL,
    unit     text                       -- the reply's own unit (data->>'unit'), if it gave one
);
CREATE INDEX IF NOT EXISTS stats_first_replies_ticket ON stats_first_replies (ticket);
CREATE INDEX IF NOT EXISTS stats_first_replies_at ON stats_first_replies (at);

INSERT INTO stats_first_replies (event_id, ticket, at, unit)
SELECT id, ticket, at, unit
FROM (SELECT e.id, e.ticket, e.at, e.type, e.data->>'unit' AS unit,
             lag(e.type) OVER (PARTITION BY e.ticket ORDER BY e.at, e.type <> 'reopened', e.id) AS before
      FROM events e
      WHERE (e.type = 'replied' AND e.data ? 'text') OR e.type = 'reopened') r
WHERE type = 'replied' AND before IS DISTINCT FROM 'replied'
ON CONFLICT (event_id) DO NOTHING;
ANALYZE stats_first_replies;
