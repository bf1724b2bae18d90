-- Volley store, "view in browser" (issue 22): what the tracking server needs to re-render a
-- recipient's message (`/v/<token>`) and the campaign's public archive page (`/a/<campaign>`):
-- the HTML template of each variant with its tracked-link placeholders, the subjects, the
-- tracking base URL and the archive's placeholder values. postcard-encoded `ViewMeta`
-- (engine/src/store/types.rs), as sled keeps it under `y <campaign>`. Written at load; never
-- a secret and never a recipient's data.
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS view_meta bytea;
