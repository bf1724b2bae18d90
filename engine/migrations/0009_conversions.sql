-- Volley store, conversions (issue 21): orders attributed to a campaign's recipients,
-- idempotent by the shop's order id.
CREATE TABLE conversions (
    campaign integer NOT NULL REFERENCES campaigns (number) ON DELETE CASCADE,
    order_id text NOT NULL,
    email text NOT NULL,
    value_micros bigint NOT NULL CHECK (value_micros >= 0),
    currency text NOT NULL,
    at timestamptz NOT NULL,
    -- 'variant' (with the stored variant in `variant`), 'holdout' or 'unattributed'.
    attribution text NOT NULL,
    variant smallint,
    PRIMARY KEY (campaign, order_id)
);
