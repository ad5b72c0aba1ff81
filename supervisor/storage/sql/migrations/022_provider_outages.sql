-- Provider outages as the daemons' circuit breakers see them (issue 23): a row while a daemon's
-- breaker for that provider is open. Every daemon reads them, so the desk's banner and /healthz
-- show an outage whichever daemon serves the page; rows of a daemon whose heartbeat stopped
-- (killed while the provider was down) are ignored by the readers.
CREATE TABLE IF NOT EXISTS provider_outages (
    provider text NOT NULL,
    daemon   text NOT NULL,
    since    timestamptz NOT NULL,
    PRIMARY KEY (provider, daemon)
);
