-- +goose Up
-- A value sealed with the server key when the database is first opened with one. Opening it at
-- every start tells a wrong or lost key at once, before any request meets a value it cannot open.
-- One row at most (id = 1). created_at is Unix milliseconds.
CREATE TABLE server_key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    check_value TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE server_key_check;
