-- Volley store, holdout groups (issue 21): a share of an A/B campaign's list kept out of the
-- send to measure lift against not sending. Held-out recipients have the state 'holdout'
-- (never mailed, never tracked; counted in state_counts under variant 0, in no variant's
-- figures), chosen by the loader and staged in the new column load_rows.holdout.

-- PostgreSQL 12 and later add an enum value inside a transaction; the value may not be used
-- before the transaction commits, and nothing below uses it (the function body is run later).
ALTER TYPE recipient_state ADD VALUE IF NOT EXISTS 'holdout';

-- As in 0001, with the staged holdout flag: (seq, line, email, domain, fields, held, variant,
-- holdout). A held-out address is stored as 'holdout' even when it is suppressed (it is not
-- sent either way, and the holdout mirrors the whole list).
CREATE OR REPLACE FUNCTION load_staged_recipients(n integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'recipients_' || n;
    stored bigint;
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE recipients INCLUDING DEFAULTS, CHECK (campaign = %s))',
                   part, n);
    EXECUTE format($q$
        INSERT INTO %I (campaign, seq, domain, email, line, fields, state, variant, last_reply)
        SELECT %s, s.seq, s.domain, s.email, s.line, s.fields,
               CASE WHEN s.holdout THEN 'holdout'::recipient_state
                    WHEN x.address IS NOT NULL THEN 'suppressed'::recipient_state
                    WHEN s.held THEN 'held'::recipient_state
                    ELSE 'pending'::recipient_state END,
               s.variant,
               CASE WHEN x.address IS NOT NULL AND NOT s.holdout THEN jsonb_build_object(
                    'code', NULL, 'enhanced', NULL,
                    'text', 'suppressed: ' || x.reason::text || ' (' || x.detail || ')',
                    'category', NULL, 'hard', false) END
        FROM (SELECT DISTINCT ON (email) * FROM load_rows ORDER BY email, seq) s
        LEFT JOIN suppressions x ON x.address = s.email$q$, part, n);
    GET DIAGNOSTICS stored = ROW_COUNT;
    EXECUTE format('ALTER TABLE recipients ATTACH PARTITION %I FOR VALUES IN (%s)', part, n);
    RETURN stored;
END $$;
