-- 答复审核 (reply review): reviews and the staff's decisions are events (`reviewed`,
-- `review_decided`) that name the reviewed event in data->>'of'. The desk's 待审核 queue and the
-- monthly 答复一次通过率 look them up by that id, and by time.
CREATE INDEX IF NOT EXISTS events_review_of ON events ((data->>'of'))
    WHERE type IN ('reviewed', 'review_decided');
CREATE INDEX IF NOT EXISTS events_reviews_at ON events (at)
    WHERE type IN ('reviewed', 'review_decided');
-- the office's own demands (登记诉求, channel visit or grid), counted per period
CREATE INDEX IF NOT EXISTS events_own_demands ON events (at)
    WHERE type = 'created' AND data->>'channel' IN ('visit', 'grid');
