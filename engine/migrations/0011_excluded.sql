-- Volley store, segments (issue 22): valid list rows left out by the campaign's rules
-- (`[campaign] where`) are not loaded, only counted, as invalid and duplicate rows are.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS excluded bigint NOT NULL DEFAULT 0;
