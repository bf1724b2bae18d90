-- Volley store, campaign documents (issue 19): a campaign handed to the cluster travels in the
-- database so that any node can send it. Never a secret: the document keeps the campaign
-- file's secret keys as (absolute) file paths or environment variable names, which each node
-- reads on its own machine.

-- One campaign (or scheduled campaign) published to the cluster: the campaign file's text,
-- rewritten to point at the files below, and what it was made from (JSON, see
-- engine/src/cluster/document.rs). `volley send` and `volley serve` publish; every node runs
-- the active ones.
CREATE TABLE campaign_documents (
    id text PRIMARY KEY,
    document jsonb NOT NULL,
    state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'paused', 'cancelled', 'done')),
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text NOT NULL
);

-- The files of a document: templates, a `[bounces] rules_file`, CA certificates, and the list
-- (the whole CSV for a scheduled campaign, its header line for a one-off one: the list is in
-- the database already). Replaced with the document, in the same transaction.
CREATE TABLE campaign_files (
    id text NOT NULL REFERENCES campaign_documents (id) ON DELETE CASCADE,
    name text NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (id, name)
);
