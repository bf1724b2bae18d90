-- Volley store, topics (issue 22): the known topics, each campaign's topic, and the
-- topic-scoped part of the suppression list. A global entry stays in `suppressions` (every
-- campaign skips the address); an entry here keeps the address from that topic's campaigns
-- only. Stores from before have no topic entries and read as they are.
CREATE TABLE topics (
    topic text PRIMARY KEY,
    name text NOT NULL                   -- display name on the preference page
);
CREATE TABLE campaign_topics (
    campaign text PRIMARY KEY,
    topic text NOT NULL,
    name text NOT NULL,
    unsubscribe text NOT NULL            -- 'topic' or 'all': what a one-click unsubscribe leaves
);
CREATE TABLE topic_suppressions (
    address text NOT NULL,
    topic text NOT NULL,
    reason suppression_reason NOT NULL,
    at timestamptz NOT NULL,
    campaign text,                       -- the campaign that caused it, if any
    detail text NOT NULL,
    PRIMARY KEY (address, topic)
);
