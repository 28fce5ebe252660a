-- +goose Up
-- In sandbox mode the platform is a merchant of the simulated cash channel it serves at
-- <base-url>/cash, and pays through its WeChat Pay v3 client like any channel: its credentials
-- there, sealed with the server key, one row.
CREATE TABLE sandbox_cash_merchant (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    mchid       TEXT NOT NULL,
    serial_no   TEXT NOT NULL,
    apiv3_key   TEXT NOT NULL,
    private_key TEXT NOT NULL,
    channel_key TEXT NOT NULL,
    channel_key_id TEXT NOT NULL
);

-- +goose Down
DROP TABLE sandbox_cash_merchant;
