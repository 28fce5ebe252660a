-- +goose Up
-- Names, ID and card numbers are sealed at rest under the server key (values prefixed "s1:");
-- id_hash is the keyed hash of the ID number, for lookups. Rows written before have id_hash ''
-- and clear values until sealed.
ALTER TABLE bindings ADD COLUMN id_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX bindings_id_hash ON bindings (id_hash);

-- +goose Down
DROP INDEX bindings_id_hash;
ALTER TABLE bindings DROP COLUMN id_hash;
