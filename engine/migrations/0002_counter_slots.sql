-- Volley store, schema v2: the counters of recipients by state get slots, so that groups of
-- outcomes recorded at once (each its own transaction, on its own connection) do not queue
-- on the same counter rows until the one before has committed.
--
-- A writer shifts the rows of the slot its connection maps to (the backend's pid modulo 16;
-- two connections sharing a slot only wait for each other, as before). A campaign's counter
-- for a variant and state is the sum of its slots: every reader sums (a slot alone may well
-- be negative). Rows stay few: campaigns x variants x states x 16 at most.
ALTER TABLE state_counts ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE state_counts DROP CONSTRAINT state_counts_pkey;
ALTER TABLE state_counts ADD PRIMARY KEY (campaign, variant, state, slot);
