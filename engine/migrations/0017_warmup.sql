-- Volley store, warm-up (issue 23): per warm-up key (a sending domain or identity), mailbox
-- provider and day (days since 1970-01-01 in the warm-up's zone), the day's ceiling, what was
-- sent against it and how it went. The ceiling gate reserves from today's row under its lock;
-- earlier rows are the history the next day's ceiling is computed from.

CREATE TABLE IF NOT EXISTS warmup_days (
    key        text NOT NULL,
    provider   text NOT NULL,
    day        int8 NOT NULL,
    ceiling    int4 NOT NULL DEFAULT 0,
    sent       int4 NOT NULL DEFAULT 0,
    delivered  int4 NOT NULL DEFAULT 0,
    bounced    int4 NOT NULL DEFAULT 0,
    deferred   int4 NOT NULL DEFAULT 0,
    throttled  int4 NOT NULL DEFAULT 0,
    blocked    int4 NOT NULL DEFAULT 0,
    complaints int4 NOT NULL DEFAULT 0,
    held       int4 NOT NULL DEFAULT 0,
    PRIMARY KEY (key, provider, day)
);
