-- The desk's sessions, sign-in counters and account state (supervisor/desk/sessions.py,
-- throttle.py, credentials.py). The cookie holds a random session id; only its SHA-256 is kept
-- here, so a copy of this table signs no one in.
CREATE TABLE IF NOT EXISTS desk_sessions (
    id_hash     text PRIMARY KEY,
    login       text NOT NULL,
    stage       text NOT NULL DEFAULT 'ok',   -- ok | code (awaiting the one-time code) | change
    csrf        text NOT NULL,
    fingerprint text NOT NULL,                -- the account's role/unit/password as signed in
    created_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,         -- the absolute lifetime
    remote      text,
    flash       text,                         -- a notice shown once on the next page
    pending     jsonb NOT NULL DEFAULT '{}'   -- e.g. the SMS code's hash and expiry
);
CREATE INDEX IF NOT EXISTS desk_sessions_login ON desk_sessions (login);
CREATE INDEX IF NOT EXISTS desk_sessions_expires ON desk_sessions (expires_at);

-- Failed sign-ins per account ('u:NAME') and per address ('a:ADDRESS'), counted under a row
-- lock so parallel attempts cannot overrun the limit.
CREATE TABLE IF NOT EXISTS desk_signin_counters (
    key           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    failures      int NOT NULL DEFAULT 0,
    locked_until  timestamptz
);

-- What the desk changes about an account (users.yaml stays the administrator's): a password set
-- on the desk (valid while users.yaml still has base_hash; `user passwd`/an edit there wins),
-- TOTP, recovery codes (SHA-256 of random codes).
CREATE TABLE IF NOT EXISTS desk_accounts (
    login             text PRIMARY KEY,
    password_hash     text,
    base_hash         text,
    password_changed  timestamptz,
    totp_secret       text,
    totp_enrolled_at  timestamptz,
    totp_last         bigint,                 -- the last time step used: a code works once
    recovery          text[] NOT NULL DEFAULT '{}'
);
