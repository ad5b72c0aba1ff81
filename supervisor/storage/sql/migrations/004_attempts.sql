-- Every hand-over of a message to a provider, and what came of it. Reconciliation reads this
-- ledger so that it never takes a provider message that another row's attempt could own (a call
-- cannot be told apart by its content), and every provider id ever learnt for a row (answer,
-- reconciliation, status callback) is known, even when a later attempt recorded another one.
CREATE TABLE IF NOT EXISTS outbox_attempts (
    id          bigserial PRIMARY KEY,
    lead        bigint NOT NULL,   -- the outbox row attempted (the group's lead)
    channel     text NOT NULL,
    address     text,
    started_at  timestamptz NOT NULL,
    outcome     text,              -- NULL while in flight; sent | retry | failed | unknown | callback
    provider_id text               -- the provider's id for this attempt, once known
);
CREATE INDEX IF NOT EXISTS outbox_attempts_to ON outbox_attempts (address, channel, started_at);
CREATE INDEX IF NOT EXISTS outbox_attempts_lead ON outbox_attempts (lead, id);
CREATE INDEX IF NOT EXISTS outbox_attempts_provider ON outbox_attempts (provider_id)
    WHERE provider_id IS NOT NULL;
