-- +goose Up
-- The notification worker claims per destination (the notify URL's host, as the worker limits
-- concurrency per host): dest holds it, written by Enqueue, and outbox_pending_dest lets a claim
-- list the destinations with pending rows one index seek each and take one destination's due
-- rows without walking another's. Rows written before this migration keep dest = '' and are
-- given theirs when the worker first claims them.
ALTER TABLE outbox ADD COLUMN dest TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_pending_dest ON outbox (dest, next_at, id, lease_until) WHERE state = 'pending';

-- +goose Down
DROP INDEX outbox_pending_dest;
ALTER TABLE outbox DROP COLUMN dest;
