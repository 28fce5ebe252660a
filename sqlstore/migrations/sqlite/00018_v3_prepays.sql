-- +goose Up
-- 医保 2.0's JSAPI cash orders (v3.md §2): the hospital's prepay for the cash part, paid at the
-- cashier together with the 医保 order that names its prepay_id.
CREATE TABLE v3_prepays (
    id INTEGER PRIMARY KEY,
    merchant_id  BIGINT NOT NULL REFERENCES merchants (id),
    out_trade_no TEXT   NOT NULL,
    prepay_id    TEXT   NOT NULL UNIQUE,
    body         TEXT   NOT NULL,
    amount       BIGINT NOT NULL,
    mix_trade_no TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    UNIQUE (merchant_id, out_trade_no)
);

-- +goose Down
DROP TABLE v3_prepays;
