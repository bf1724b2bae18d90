-- Volley store, campaigns cancelled over the API (issue 20): the recipients a cancelled
-- campaign never sent take the state 'cancelled' (not 'expired': nothing was attempted, and
-- no soft-bounce strike may follow from it).
ALTER TYPE recipient_state ADD VALUE IF NOT EXISTS 'cancelled';
