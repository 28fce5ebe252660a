-- +goose Up
-- Single-use credentials of the payer pages, stored only as SHA-256 hashes (the clear value is in
-- the payer's hands alone) and claimed with one UPDATE ... WHERE used_at = 0 AND expires_at > now.
-- Times are Unix milliseconds.

-- Card-binding links (getbindurl): valid 10 minutes; a successful binding or unbinding uses one.
-- failures counts the bureau's refusals; a link is burnt after a few.
CREATE TABLE bind_links (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    merchant_id BIGINT  NOT NULL REFERENCES merchants (id),
    appid       TEXT    NOT NULL,
    openid      TEXT    NOT NULL,
    return_url  TEXT    NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX bind_links_expires ON bind_links (expires_at);

-- Payment codes of 刷码付 (auth_code): 18 digits, valid 60 seconds, one order each.
CREATE TABLE pay_codes (
    id         INTEGER PRIMARY KEY,
    code_hash  TEXT    NOT NULL UNIQUE,
    appid      TEXT    NOT NULL,
    openid     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX pay_codes_expires ON pay_codes (expires_at);

-- +goose Down
DROP TABLE pay_codes;
DROP TABLE bind_links;
