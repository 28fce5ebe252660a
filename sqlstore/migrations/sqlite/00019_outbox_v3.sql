-- +goose Up
-- 医保 2.0 callbacks (v3.md §4) share the outbox: a row's format says how it is sent and judged
-- (xml: the XML API's signed body and SUCCESS envelope; v3: JSON with APIv3 headers signed at
-- each attempt, any 2XX), and give_up_at ends its retries (the merchant's retry window).
ALTER TABLE outbox ADD COLUMN format TEXT NOT NULL DEFAULT 'xml';
ALTER TABLE outbox ADD COLUMN give_up_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE outbox DROP COLUMN give_up_at;
ALTER TABLE outbox DROP COLUMN format;
