-- Volley store, the transactional lane on PostgreSQL (issue 20): messages appended to a
-- loaded campaign one request at a time, and the clients' idempotency keys.

-- An appended message may go to an address the campaign has had before (two receipts to one
-- customer): the loader de-duplicates a list itself (DISTINCT ON), so the uniqueness of
-- (campaign, email) goes and a plain index stays for lookups by address.
ALTER TABLE recipients DROP CONSTRAINT IF EXISTS recipients_campaign_email_key;
CREATE INDEX IF NOT EXISTS recipients_email ON recipients (campaign, email);

-- I, J: an idempotency key names the row its first request appended, until `until` (the
-- request's time plus its window, 24 h for the HTTP API). Expired records are deleted by
-- the appends that come later (by `until`), and by the campaign's removal.
CREATE TABLE idempotency_keys (
    campaign integer NOT NULL REFERENCES campaigns (number) ON DELETE CASCADE,
    key text NOT NULL,
    seq bigint NOT NULL,
    domain text NOT NULL,
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    at timestamptz NOT NULL,
    until timestamptz NOT NULL,
    PRIMARY KEY (campaign, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (campaign, until);
