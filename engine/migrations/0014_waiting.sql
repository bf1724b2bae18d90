-- Volley store, local-time sending windows (issue 23): a recipient outside its sending window
-- ([schedule] window / send_at) takes the state 'waiting' with next_attempt set to the moment
-- its window opens. It is not an attempt: no attempt counted, nothing in the attempt log.
-- Due retries are now read over 'deferred' and 'waiting' alike; the index below serves both
-- (a partial index on the new value could not be built in the transaction that adds it).

-- PostgreSQL 12 and later add an enum value inside a transaction; nothing below uses it.
ALTER TYPE recipient_state ADD VALUE IF NOT EXISTS 'waiting';

CREATE INDEX IF NOT EXISTS recipients_next_attempt ON recipients (campaign, next_attempt)
    WHERE next_attempt IS NOT NULL;
