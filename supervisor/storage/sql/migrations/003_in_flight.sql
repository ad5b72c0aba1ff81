-- A row is in flight from just before it is handed to a provider until its outcome is recorded.
-- After a crash, only in-flight rows need asking the provider (find_sent); the others were never
-- sent and go again at once (asking about them could match another message and lose this one).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS in_flight boolean NOT NULL DEFAULT false;
