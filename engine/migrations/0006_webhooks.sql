-- Volley store, webhooks out (issue 20): where each webhook stands in each campaign's event
-- history. The events themselves are the history (attempts, report_events, track_events);
-- a cursor moves only after the webhook's receiver acknowledged the events before it.

-- A webhook of a serve file, by name, and when it was first seen (it sends the events from
-- then on).
CREATE TABLE webhooks (
    name text PRIMARY KEY,
    registered_ms bigint NOT NULL
);

-- Every event of `campaign` before `at_ms` (epoch ms), and the first `skip` events at
-- `at_ms` (in the history's order), were acknowledged by the webhook's receiver.
CREATE TABLE webhook_cursors (
    webhook text NOT NULL REFERENCES webhooks (name) ON DELETE CASCADE,
    campaign text NOT NULL,
    at_ms bigint NOT NULL,
    skip bigint NOT NULL,
    PRIMARY KEY (webhook, campaign)
);
