-- 待审核 (the desk's review queue, desk/reviews.py) and the monthly report's 退回 by reason read
-- the reviews that sent a reply back: a partial index holds just those, and statistics on
-- (type, outcome) let the planner know how few of the events they are (issue 22).
CREATE INDEX IF NOT EXISTS events_review_queue ON events (at DESC, id)
    WHERE type = 'reviewed' AND data->>'outcome' = 'returned';
CREATE STATISTICS IF NOT EXISTS events_type_outcome (mcv) ON type, (data->>'outcome') FROM events;
