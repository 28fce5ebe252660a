-- +goose Up
-- The cash channel's own migration track (version table cash_goose_db_version). The wallets and
-- the in-process channel's movements were first created by the platform's 00003_cash.sql; IF NOT
-- EXISTS keeps a database made that way working and gives a database of its own the same tables.
-- Amounts are fen; times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS cash_wallets (
    payer      TEXT    PRIMARY KEY,
    balance    BIGINT  NOT NULL CHECK (balance >= 0),
    pin_hash   TEXT    NOT NULL,
    declining  INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE IF NOT EXISTS cash_charges (
    id         INTEGER PRIMARY KEY,
    serial     TEXT    NOT NULL UNIQUE,
    payer      TEXT    NOT NULL,
    amount     BIGINT  NOT NULL CHECK (amount > 0),
    refunded   BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    CHECK (refunded >= 0 AND refunded <= amount)
);

CREATE TABLE IF NOT EXISTS cash_refunds (
    id            INTEGER PRIMARY KEY,
    serial        TEXT    NOT NULL UNIQUE,
    charge_serial TEXT    NOT NULL,
    amount        BIGINT  NOT NULL CHECK (amount > 0),
    created_at    BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS cash_refunds_charge ON cash_refunds (charge_serial);

-- +goose Down
-- The tables may belong to the platform's track too: left in place.
SELECT 1;
