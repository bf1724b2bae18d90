-- Volley store, several relays (issue 23): what each relay did for each campaign, so status
-- and reports show the traffic split — messages delivered, attempts deferred (cut
-- transactions included), messages bounced, and the times the relay was taken out for a
-- cool-down (refused login, TLS failure, out of reach). Added to by every node sending the
-- campaign (INSERT … ON CONFLICT … DO UPDATE adds). sled keeps the same under
-- `G <campaign> 0 <relay>`.
CREATE TABLE IF NOT EXISTS relay_tallies (
    campaign text NOT NULL,
    relay text NOT NULL,
    delivered int8 NOT NULL DEFAULT 0,
    deferred int8 NOT NULL DEFAULT 0,
    bounced int8 NOT NULL DEFAULT 0,
    cooldowns int8 NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, relay)
);
