-- +goose Up
-- The simulated bureau's own books, on their own migration track (version table
-- bureau_goose_db_version): it may share the platform's database in sandbox mode or have its own
-- (medpay bureau serve). Amounts in fen, times Unix ms. The first three tables existed before in
-- the platform's track, hence IF NOT EXISTS.

-- Insured persons (sandbox test persons and any added by tests).
CREATE TABLE IF NOT EXISTS bureau_persons (
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
CREATE INDEX IF NOT EXISTS bureau_persons_city ON bureau_persons (city_id, scenario);

-- Personal accounts (个人账户). The row is also the per-person lock of every money movement.
CREATE TABLE IF NOT EXISTS bureau_accounts (
    psn_no     TEXT   PRIMARY KEY REFERENCES bureau_persons (psn_no),
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    updated_at BIGINT NOT NULL
);

-- Annual accumulators per person, year (China Standard Time) and med_type group.
CREATE TABLE IF NOT EXISTS bureau_accumulators (
    psn_no     TEXT    NOT NULL REFERENCES bureau_persons (psn_no),
    year       INTEGER NOT NULL,
    med_group  TEXT    NOT NULL,
    dedc_used  BIGINT  NOT NULL CHECK (dedc_used >= 0),
    pool_paid  BIGINT  NOT NULL CHECK (pool_paid >= 0),
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (psn_no, year, med_group)
);

-- The bureau's own key pair and other single values.
CREATE TABLE bureau_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Institutions (national.md §6): hospitals and platforms that call the bureau.
CREATE TABLE bureau_institutions (
    app_id     TEXT    PRIMARY KEY,
    app_secret TEXT    NOT NULL,
    org_codg   TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    city_id    TEXT    NOT NULL,
    hosp_lv    INTEGER NOT NULL,
    public_key TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

-- Uploaded orders (6201) and their settlement (6202). ord_stas as national.md §3: 1 uploaded,
-- 4 settled, 6 refunded in part, 7 revoked, 9 refunded in full. The amounts are the
-- pre-settlement's until settled, the settlement's after; refd_* is what refunds gave back.
CREATE TABLE bureau_orders (
    pay_ord_id      TEXT    PRIMARY KEY,
    pay_token       TEXT    NOT NULL,
    app_id          TEXT    NOT NULL,
    med_org_ord     TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    psn_no          TEXT    NOT NULL REFERENCES bureau_persons (psn_no),
    city_id         TEXT    NOT NULL,
    org_codg        TEXT    NOT NULL,
    hosp_lv         INTEGER NOT NULL,
    order_type      TEXT    NOT NULL,
    request_content TEXT    NOT NULL,
    default_fee     BIGINT  NOT NULL,
    ord_stas        INTEGER NOT NULL,
    setl_id         TEXT    UNIQUE,
    org_biz_ser     TEXT    NOT NULL DEFAULT '',
    med_group       TEXT    NOT NULL DEFAULT '',
    year            INTEGER NOT NULL DEFAULT 0,
    medfee_sumamt   BIGINT  NOT NULL,
    act_pay_dedc    BIGINT  NOT NULL,
    hifp_pay        BIGINT  NOT NULL,
    acct_pay        BIGINT  NOT NULL,
    psn_cash_pay    BIGINT  NOT NULL,
    refd_hifp       BIGINT  NOT NULL DEFAULT 0,
    refd_acct       BIGINT  NOT NULL DEFAULT 0,
    refd_cash       BIGINT  NOT NULL DEFAULT 0,
    response_content TEXT   NOT NULL,
    created_at      BIGINT  NOT NULL,
    settled_at      BIGINT  NOT NULL DEFAULT 0,
    revoked_at      BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (app_id, med_org_ord),
    CHECK (medfee_sumamt = hifp_pay + acct_pay + psn_cash_pay),
    CHECK (hifp_pay >= 0 AND acct_pay >= 0 AND psn_cash_pay >= 0 AND act_pay_dedc >= 0),
    CHECK (refd_hifp <= hifp_pay AND refd_acct <= acct_pay AND refd_cash <= psn_cash_pay)
);
CREATE INDEX bureau_orders_settled ON bureau_orders (app_id, settled_at);
CREATE INDEX bureau_orders_revoked ON bureau_orders (app_id, revoked_at);

-- Refunds (6203), once per (institution, appRefdSn).
CREATE TABLE bureau_order_refunds (
    refund_id   TEXT   PRIMARY KEY,
    app_id      TEXT   NOT NULL,
    app_refd_sn TEXT   NOT NULL,
    pay_ord_id  TEXT   NOT NULL REFERENCES bureau_orders (pay_ord_id),
    refd_type   TEXT   NOT NULL,
    hifp_pay    BIGINT NOT NULL CHECK (hifp_pay >= 0),
    acct_pay    BIGINT NOT NULL CHECK (acct_pay >= 0),
    cash_pay    BIGINT NOT NULL CHECK (cash_pay >= 0),
    created_at  BIGINT NOT NULL,
    UNIQUE (app_id, app_refd_sn)
);
CREATE INDEX bureau_order_refunds_created ON bureau_order_refunds (app_id, created_at);

-- Payers' authorisations (national.md §5): single-use codes and the payAuthNo they give. Only
-- hashes of both are kept. expires_at 0: until unbound.
CREATE TABLE bureau_auth_codes (
    code_hash  TEXT   PRIMARY KEY,
    app_id     TEXT   NOT NULL,
    psn_no     TEXT   NOT NULL REFERENCES bureau_persons (psn_no),
    scope      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE bureau_auths (
    auth_hash  TEXT   PRIMARY KEY,
    app_id     TEXT   NOT NULL,
    psn_no     TEXT   NOT NULL REFERENCES bureau_persons (psn_no),
    scope      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE bureau_auths;
DROP TABLE bureau_auth_codes;
DROP TABLE bureau_order_refunds;
DROP TABLE bureau_orders;
DROP TABLE bureau_institutions;
DROP TABLE bureau_settings;
