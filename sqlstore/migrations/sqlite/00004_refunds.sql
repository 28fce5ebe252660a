-- +goose Up
CREATE TABLE refunds (
    id                   INTEGER PRIMARY KEY,
    med_refund_id        TEXT    NOT NULL UNIQUE,
    order_id             BIGINT  NOT NULL REFERENCES orders (id),
    merchant_id          BIGINT  NOT NULL,
    hosp_out_refund_no   TEXT    NOT NULL,
    fingerprint          TEXT    NOT NULL,
    fields               TEXT    NOT NULL,
    part_refund_type     TEXT    NOT NULL DEFAULT '',
    cash_refund_fee      BIGINT  NOT NULL CHECK (cash_refund_fee >= 0),
    insurance_refund_fee BIGINT  NOT NULL CHECK (insurance_refund_fee >= 0),
    hifp_refund          BIGINT  NOT NULL DEFAULT 0,
    acct_refund          BIGINT  NOT NULL DEFAULT 0,
    state                TEXT    NOT NULL,
    cash_status          TEXT    NOT NULL,
    insurance_status     TEXT    NOT NULL,
    status_desc          TEXT    NOT NULL DEFAULT '',
    step                 TEXT    NOT NULL DEFAULT '',
    bureau_refund_id     TEXT    NOT NULL DEFAULT '',
    cash_refund_id       TEXT    NOT NULL DEFAULT '',
    success_time         BIGINT  NOT NULL DEFAULT 0,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    version              BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (merchant_id, hosp_out_refund_no)
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_step ON refunds (step, updated_at);

-- +goose Down
DROP TABLE refunds;
