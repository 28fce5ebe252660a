-- +goose Up
-- Times are Unix milliseconds (BIGINT) so that one set of queries serves every engine.
CREATE TABLE merchants (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    appid       TEXT    NOT NULL UNIQUE,
    mch_id      TEXT    NOT NULL UNIQUE,
    secret_hash TEXT    NOT NULL,
    api_key_enc TEXT    NOT NULL,
    cities      TEXT    NOT NULL DEFAULT '',
    level       INTEGER NOT NULL DEFAULT 0,
    refund_ips  TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);

CREATE TABLE provider_authorizations (
    provider_id BIGINT NOT NULL REFERENCES merchants (id),
    merchant_id BIGINT NOT NULL REFERENCES merchants (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (provider_id, merchant_id)
);

CREATE TABLE access_tokens (
    hash       TEXT   PRIMARY KEY,
    appid      TEXT   NOT NULL,
    sub_appid  TEXT   NOT NULL DEFAULT '',
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_scope ON access_tokens (appid, sub_appid, issued_at);

CREATE TABLE nonces (
    mch_id  TEXT   NOT NULL,
    nonce   TEXT   NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (mch_id, nonce)
);
CREATE INDEX nonces_seen ON nonces (seen_at);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    med_trans_id     TEXT    NOT NULL UNIQUE,
    merchant_id      BIGINT  NOT NULL REFERENCES merchants (id),
    provider_id      BIGINT  NOT NULL DEFAULT 0,
    hosp_out_trade_no TEXT   NOT NULL,
    fingerprint      TEXT    NOT NULL,
    fields           TEXT    NOT NULL,
    order_type       TEXT    NOT NULL,
    pay_type         INTEGER NOT NULL,
    total_fee        BIGINT  NOT NULL,
    cash_fee         BIGINT  NOT NULL,
    insurance_fee    BIGINT  NOT NULL,
    hifp_pay         BIGINT  NOT NULL DEFAULT 0,
    acct_pay         BIGINT  NOT NULL DEFAULT 0,
    city_id          TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL,
    cash_status      TEXT    NOT NULL,
    insurance_status TEXT    NOT NULL,
    status_desc      TEXT    NOT NULL DEFAULT '',
    psn_no           TEXT    NOT NULL DEFAULT '',
    card_no          TEXT    NOT NULL DEFAULT '',
    insurance_order_id TEXT  NOT NULL DEFAULT '',
    cash_order_id    TEXT    NOT NULL DEFAULT '',
    response_content TEXT    NOT NULL DEFAULT '',
    step             TEXT    NOT NULL DEFAULT '',
    attempt          INTEGER NOT NULL DEFAULT 0,
    time_expire      BIGINT  NOT NULL,
    time_end         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    version          BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (merchant_id, hosp_out_trade_no)
);
CREATE INDEX orders_step ON orders (step, updated_at);
CREATE INDEX orders_created ON orders (created_at);

-- Card bindings: a social-security card bound to a payer (openid under an appid).
CREATE TABLE bindings (
    appid      TEXT   NOT NULL,
    openid     TEXT   NOT NULL,
    psn_no     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    id_no      TEXT   NOT NULL,
    card_no    TEXT   NOT NULL,
    city_id    TEXT   NOT NULL,
    insutype   TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (appid, openid)
);

-- Double-entry ledger: every transfer is two rows that sum to zero.
CREATE TABLE ledger_entries (
    id         INTEGER PRIMARY KEY,
    transfer   TEXT   NOT NULL,
    order_id   BIGINT NOT NULL DEFAULT 0,
    refund_id  BIGINT NOT NULL DEFAULT 0,
    account    TEXT   NOT NULL,
    amount     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account);
CREATE INDEX ledger_entries_order ON ledger_entries (order_id);

-- Outbox: notifications written in the same transaction as the state change that causes them.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    notify_id   TEXT    NOT NULL UNIQUE,
    merchant_id BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    order_id    BIGINT  NOT NULL DEFAULT 0,
    refund_id   BIGINT  NOT NULL DEFAULT 0,
    url         TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT  NOT NULL,
    lease_until BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    done_at     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (state, next_at);

CREATE TABLE notify_attempts (
    id          INTEGER PRIMARY KEY,
    outbox_id   BIGINT  NOT NULL REFERENCES outbox (id),
    at          BIGINT  NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    latency_ms  BIGINT  NOT NULL DEFAULT 0,
    answer      TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX notify_attempts_outbox ON notify_attempts (outbox_id);

-- Wrong PINs per payer: five in a row block confirmations for 15 minutes.
CREATE TABLE pin_failures (
    payer         TEXT    PRIMARY KEY,
    failures      INTEGER NOT NULL,
    blocked_until BIGINT  NOT NULL DEFAULT 0,
    updated_at    BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE pin_failures;
DROP TABLE notify_attempts;
DROP TABLE outbox;
DROP TABLE ledger_entries;
DROP TABLE bindings;
DROP TABLE orders;
DROP TABLE nonces;
DROP TABLE access_tokens;
DROP TABLE provider_authorizations;
DROP TABLE merchants;
