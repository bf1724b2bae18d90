-- Volley store, the cluster (issue 19): the nodes of `volley serve --node NAME` sharing this
-- database. Work is shared through the `leases` table of 0001: `domain:<recipient domain>`
-- (the right to send to that domain, every campaign, due retries included) and
-- `load:<campaign id>` (loading a campaign's list). Every time is the database's clock.

CREATE TABLE nodes (
    name text PRIMARY KEY,                  -- `--node NAME`, the owner of its leases
    instance text NOT NULL,                 -- one process's random id: a restart is a new one
    host text,
    pid integer,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    lease interval NOT NULL,                -- its lease time: live while heartbeat_at + lease > now()
    stopping boolean NOT NULL DEFAULT false,-- SIGTERM: leases handed back, finishing
    sent_last_minute bigint NOT NULL DEFAULT 0,
    version text
);

-- A node's leases (renewed at each heartbeat, released on SIGTERM).
CREATE INDEX leases_owner ON leases (owner);
