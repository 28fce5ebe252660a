-- +goose Up
-- Accounts of the platform's operators and of the merchants' staff (accounts.go). Passwords are
-- argon2id hashes; TOTP secrets are sealed with the server key. A staff account belongs to an
-- application until approval links it to the merchant too.
CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    name           TEXT    NOT NULL DEFAULT '',
    role           TEXT    NOT NULL,
    application_id BIGINT  NOT NULL DEFAULT 0,
    merchant_id    BIGINT  NOT NULL DEFAULT 0,
    password_hash  TEXT    NOT NULL DEFAULT '',
    totp_enc       TEXT    NOT NULL DEFAULT '',
    totp_on        INTEGER NOT NULL DEFAULT 0,
    totp_step      BIGINT  NOT NULL DEFAULT 0, -- last time step used: a code works once
    invite_hash    TEXT    NOT NULL DEFAULT '',
    invite_until   BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    UNIQUE (kind, email)
);
CREATE INDEX accounts_merchant ON accounts (merchant_id);

-- Server-side sessions, by the SHA-256 of the cookie's value. mfa is 1 once the second factor
-- was given (operators cannot act before).
CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    account_id  BIGINT  NOT NULL REFERENCES accounts (id),
    mfa         INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    seen_at     BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed logins per key ("acct:<kind>:<email>", "ip:<address>") within a window.
CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start BIGINT  NOT NULL
);

-- Append-only record of every operator and staff action; triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor_id    BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    merchant_id BIGINT  NOT NULL DEFAULT 0,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    detail      TEXT    NOT NULL DEFAULT '',
    ip          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_merchant ON audit_log (merchant_id, id);

-- Applications to become a merchant (seed §4): the local authority's consent and 定点 status, an
-- open cash channel, and the application itself.
CREATE TABLE applications (
    id             INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    org_codg       TEXT    NOT NULL,
    register_name  TEXT    NOT NULL DEFAULT '',
    public         INTEGER NOT NULL DEFAULT 0,
    level          INTEGER NOT NULL DEFAULT 0,
    cities         TEXT    NOT NULL,
    cash_mchid     TEXT    NOT NULL,
    mp_appid       TEXT    NOT NULL,
    contact_name   TEXT    NOT NULL,
    contact_phone  TEXT    NOT NULL,
    contact_email  TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    reason         TEXT    NOT NULL DEFAULT '',
    approved_cities TEXT   NOT NULL DEFAULT '',
    merchant_id    BIGINT  NOT NULL DEFAULT 0,
    reviewed_by    BIGINT  NOT NULL DEFAULT 0,
    reviewed_at    BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX applications_state ON applications (state, id);

-- The consent document of an application: content-sniffed PDF, PNG or JPEG, at most 5 MiB.
CREATE TABLE application_files (
    application_id BIGINT  PRIMARY KEY REFERENCES applications (id),
    content_type   TEXT    NOT NULL,
    filename       TEXT    NOT NULL,
    data           BLOB  NOT NULL,
    sha256         TEXT    NOT NULL
);

-- Operating state of a merchant kept beside merchants: suspension.
CREATE TABLE merchant_controls (
    merchant_id  BIGINT  PRIMARY KEY REFERENCES merchants (id),
    suspended_at BIGINT  NOT NULL DEFAULT 0,
    reason       TEXT    NOT NULL DEFAULT ''
);

-- Retired API keys and app secrets that keep working until valid_until (rotation overlap).
CREATE TABLE retired_keys (
    id          INTEGER PRIMARY KEY,
    merchant_id BIGINT  NOT NULL REFERENCES merchants (id),
    api_key_enc TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    valid_until BIGINT  NOT NULL
);
CREATE INDEX retired_keys_merchant ON retired_keys (merchant_id, valid_until);

-- Credentials waiting to be shown once in the portal (sealed), deleted when shown.
CREATE TABLE pending_credentials (
    merchant_id BIGINT  PRIMARY KEY REFERENCES merchants (id),
    sealed      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE pending_credentials;
DROP TABLE retired_keys;
DROP TABLE merchant_controls;
DROP TABLE application_files;
DROP TABLE applications;
DROP TABLE audit_log;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE accounts;
