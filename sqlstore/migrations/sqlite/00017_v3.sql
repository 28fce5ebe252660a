-- +goose Up
-- 医保 2.0 (v3.md): a merchant's APIv3 credentials (its public key under a serial, the APIv3 key
-- sealed), the platform's own APIv3 key pair (sealed, generated once), and the generation of an
-- order: 1 for the XML API, 2 for /v3/med-ins/, so both share orders, ledger and bills.
CREATE TABLE merchant_v3 (
    merchant_id    BIGINT  PRIMARY KEY REFERENCES merchants (id),
    serial_no      TEXT    NOT NULL UNIQUE,
    public_key     TEXT    NOT NULL,
    apiv3_key_enc  TEXT    NOT NULL,
    retry_window_s INTEGER NOT NULL DEFAULT 30,
    created_at     BIGINT  NOT NULL
);

CREATE TABLE platform_keys (
    key_id          TEXT   PRIMARY KEY,
    private_key_enc TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);

ALTER TABLE orders ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE orders DROP COLUMN generation;
DROP TABLE platform_keys;
DROP TABLE merchant_v3;
