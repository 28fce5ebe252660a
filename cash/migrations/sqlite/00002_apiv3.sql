-- +goose Up
-- The channel served over APIv3 (v3.md §1–2).

-- The channel's signing key (one row); the private key is sealed with the server key.
CREATE TABLE cash_keys (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    key_id      TEXT    NOT NULL,
    private_key TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Merchants registered at the channel; the APIv3 key is sealed with the server key.
CREATE TABLE cash_merchants (
    mchid      TEXT   PRIMARY KEY,
    apiv3_key  TEXT   NOT NULL,
    serial_no  TEXT   NOT NULL,
    public_key TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- A payer's wallet can lose the first answer to each money-moving call (sandbox scenario).
ALTER TABLE cash_wallets ADD COLUMN lose_answers INTEGER NOT NULL DEFAULT 0;

-- One row per JSAPI or native order, claimed by (mchid, out_trade_no).
CREATE TABLE cash_trades (
    id             INTEGER PRIMARY KEY,
    mchid          TEXT    NOT NULL,
    out_trade_no   TEXT    NOT NULL,
    trade_type     TEXT    NOT NULL,
    appid          TEXT    NOT NULL,
    openid         TEXT    NOT NULL DEFAULT '',
    description    TEXT    NOT NULL,
    attach         TEXT    NOT NULL DEFAULT '',
    notify_url     TEXT    NOT NULL,
    total          BIGINT  NOT NULL CHECK (total > 0),
    request_hash   TEXT    NOT NULL,
    prepay_id      TEXT    NOT NULL UNIQUE,
    state          TEXT    NOT NULL,
    transaction_id TEXT    UNIQUE,
    payer          TEXT    NOT NULL DEFAULT '',
    refunded       BIGINT  NOT NULL DEFAULT 0,
    answer_lost    INTEGER NOT NULL DEFAULT 0,
    expire_at      BIGINT  NOT NULL,
    paid_at        BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    UNIQUE (mchid, out_trade_no),
    CHECK (refunded >= 0 AND refunded <= total)
);

-- One row per refund, claimed by (mchid, out_refund_no).
CREATE TABLE cash_trade_refunds (
    id            INTEGER PRIMARY KEY,
    mchid         TEXT    NOT NULL,
    out_refund_no TEXT    NOT NULL,
    trade_id      BIGINT  NOT NULL REFERENCES cash_trades (id),
    refund_id     TEXT    NOT NULL UNIQUE,
    amount        BIGINT  NOT NULL CHECK (amount > 0),
    reason        TEXT    NOT NULL DEFAULT '',
    notify_url    TEXT    NOT NULL DEFAULT '',
    request_hash  TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    answer_lost   INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    success_at    BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (mchid, out_refund_no)
);
CREATE INDEX cash_trade_refunds_trade ON cash_trade_refunds (trade_id);

-- The callbacks' outbox: written in the transaction of the change it reports, delivered at
-- least once by the callback worker. resource is the event's JSON, sealed at each delivery.
CREATE TABLE cash_callbacks (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT    NOT NULL UNIQUE,
    mchid         TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    original_type TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       BIGINT  NOT NULL,
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL,
    delivered_at  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX cash_callbacks_due ON cash_callbacks (state, next_at);

-- Request nonces against replay (v3.md §1: 10 minutes), kept across restarts and processes.
CREATE TABLE cash_nonces (
    nonce_key  TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE cash_nonces;
DROP TABLE cash_callbacks;
DROP TABLE cash_trade_refunds;
DROP TABLE cash_trades;
ALTER TABLE cash_wallets DROP COLUMN lose_answers;
DROP TABLE cash_merchants;
DROP TABLE cash_keys;
