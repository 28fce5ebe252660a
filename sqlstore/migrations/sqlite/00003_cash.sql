-- +goose Up
-- The cash channel simulator (package cash): the payers' wallets and the movements on them.
-- Amounts are fen; times are Unix milliseconds.
CREATE TABLE cash_wallets (
    payer      TEXT    PRIMARY KEY,
    balance    BIGINT  NOT NULL CHECK (balance >= 0),
    pin_hash   TEXT    NOT NULL,
    declining  INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- One row per charge, claimed by its idempotency serial.
CREATE TABLE cash_charges (
    id         INTEGER PRIMARY KEY,
    serial     TEXT    NOT NULL UNIQUE,
    payer      TEXT    NOT NULL,
    amount     BIGINT  NOT NULL CHECK (amount > 0),
    refunded   BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    CHECK (refunded >= 0 AND refunded <= amount)
);

CREATE TABLE cash_refunds (
    id            INTEGER PRIMARY KEY,
    serial        TEXT    NOT NULL UNIQUE,
    charge_serial TEXT    NOT NULL,
    amount        BIGINT  NOT NULL CHECK (amount > 0),
    created_at    BIGINT  NOT NULL
);
CREATE INDEX cash_refunds_charge ON cash_refunds (charge_serial);

-- +goose Down
DROP TABLE cash_refunds;
DROP TABLE cash_charges;
DROP TABLE cash_wallets;
