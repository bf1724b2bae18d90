-- Volley store, the circuit breaker on policy blocks (issue 23).
--
-- A destination whose receiver answered "the sender is blocked" (a blocklist, reputation, a
-- spam verdict, a 5.7.x policy refusal) past `[shaping.*] block_threshold` is suspended until
-- `paused_until`. The block is kept so the next run (or another node) holds the destination
-- back until then and probes it after, and so `volley status` and the campaign reports can
-- name it: the replies, how many, when it tripped, which campaigns it held back, whether a
-- probe lifted it. The record is the engine's `DestinationBlock` as JSON; the columns beside
-- it are for reading by hand.
CREATE TABLE destination_blocks (
    destination text PRIMARY KEY,           -- `relay host:port` or its MX hosts
    paused_until timestamptz NOT NULL,
    lifted_at timestamptz,                  -- NULL while the block stands
    record jsonb NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
