-- +goose Up
-- The bureau simulator's own books (package bureau), kept apart from the platform's tables so that
-- the two can be reconciled like a real bureau and a platform. Amounts in fen, times Unix ms.

-- Insured persons (sandbox test persons and any added by tests).
CREATE TABLE bureau_persons (
    psn_no     TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    id_no      TEXT   NOT NULL UNIQUE,
    card_no    TEXT   NOT NULL UNIQUE,
    city_id    TEXT   NOT NULL,
    scenario   TEXT   NOT NULL,
    psn_type   TEXT   NOT NULL,
    insutype   TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX bureau_persons_city ON bureau_persons (city_id, scenario);

-- Personal accounts (个人账户). The row is also the per-person lock of every money movement.
CREATE TABLE bureau_accounts (
    psn_no     TEXT   PRIMARY KEY REFERENCES bureau_persons (psn_no),
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    updated_at BIGINT NOT NULL
);

-- Annual accumulators per person, year (China Standard Time) and med_type group.
CREATE TABLE bureau_accumulators (
    psn_no     TEXT    NOT NULL REFERENCES bureau_persons (psn_no),
    year       INTEGER NOT NULL,
    med_group  TEXT    NOT NULL,
    dedc_used  BIGINT  NOT NULL CHECK (dedc_used >= 0),
    pool_paid  BIGINT  NOT NULL CHECK (pool_paid >= 0),
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (psn_no, year, med_group)
);

-- Settlements. state: settled, reversed, refunded, or tombstone (a reversal of a serial that was
-- never settled: it claims the serial so that a late settle is refused).
CREATE TABLE bureau_settlements (
    id                INTEGER PRIMARY KEY,
    setl_id           TEXT    NOT NULL UNIQUE,
    serial            TEXT    NOT NULL UNIQUE,
    fingerprint       TEXT    NOT NULL,
    psn_no            TEXT    NOT NULL,
    city_id           TEXT    NOT NULL,
    org_no            TEXT    NOT NULL DEFAULT '',
    order_type        TEXT    NOT NULL DEFAULT '',
    med_type          TEXT    NOT NULL DEFAULT '',
    med_group         TEXT    NOT NULL DEFAULT '',
    year              INTEGER NOT NULL DEFAULT 0,
    hosp_lv           INTEGER NOT NULL DEFAULT 0,
    medfee_sumamt     BIGINT  NOT NULL DEFAULT 0,
    act_pay_dedc      BIGINT  NOT NULL DEFAULT 0,
    hifp_pay          BIGINT  NOT NULL DEFAULT 0,
    acct_pay          BIGINT  NOT NULL DEFAULT 0,
    psn_cash_pay      BIGINT  NOT NULL DEFAULT 0,
    response_content  TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL,
    settled_at        BIGINT  NOT NULL DEFAULT 0,
    reversed_at       BIGINT  NOT NULL DEFAULT 0,
    refunded_at       BIGINT  NOT NULL DEFAULT 0,
    CHECK (medfee_sumamt = hifp_pay + acct_pay + psn_cash_pay),
    CHECK (hifp_pay >= 0 AND acct_pay >= 0 AND psn_cash_pay >= 0 AND act_pay_dedc >= 0)
);
CREATE INDEX bureau_settlements_settled ON bureau_settlements (settled_at);
CREATE INDEX bureau_settlements_reversed ON bureau_settlements (reversed_at);
CREATE INDEX bureau_settlements_psn ON bureau_settlements (psn_no);

-- Refunds: the whole insured part of one settlement, once (settle_serial is unique).
CREATE TABLE bureau_refunds (
    id            INTEGER PRIMARY KEY,
    refund_id     TEXT   NOT NULL UNIQUE,
    serial        TEXT   NOT NULL UNIQUE,
    settle_serial TEXT   NOT NULL UNIQUE,
    setl_id       TEXT   NOT NULL,
    psn_no        TEXT   NOT NULL,
    hifp_pay      BIGINT NOT NULL CHECK (hifp_pay >= 0),
    acct_pay      BIGINT NOT NULL CHECK (acct_pay >= 0),
    created_at    BIGINT NOT NULL
);
CREATE INDEX bureau_refunds_created ON bureau_refunds (created_at);

-- +goose Down
DROP TABLE bureau_refunds;
DROP TABLE bureau_settlements;
DROP TABLE bureau_accumulators;
DROP TABLE bureau_accounts;
DROP TABLE bureau_persons;
