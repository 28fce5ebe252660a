-- +goose Up
-- The bureau simulator's tables moved to its own migration track (bureau/migrations, version
-- table bureau_goose_db_version). Databases made before keep the tables this version created;
-- the bureau's track creates them only where they are missing.
SELECT 1;

-- +goose Down
SELECT 1;
