-- Volley store, the cluster (issue 19), continued.
--
-- A destination's adaptive back-off (throttling cut its rate and connections, or suspended
-- it), saved by the node sending there whenever it changes, so the node that takes the
-- destination's domains over starts from the same limits rather than from full speed.
CREATE TABLE destination_backoff (
    name text PRIMARY KEY,                  -- the destination: `relay host:port` or its MX hosts
    rate double precision,                  -- messages per second; NULL: not limited
    connections integer NOT NULL,
    floor double precision NOT NULL,
    ceiling double precision NOT NULL,
    suspended_until timestamptz,            -- by the database's clock
    saved_at timestamptz NOT NULL DEFAULT now()
);

-- A node reads the due retries of the domains it holds (`due_in_domains`): by campaign and
-- domain, in due order.
CREATE INDEX recipients_due_by_domain ON recipients (campaign, domain, next_attempt)
    WHERE state = 'deferred';
