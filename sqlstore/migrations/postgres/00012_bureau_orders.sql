-- +goose Up
-- The order at the bureau (national.md 6201): payOrdId and payToken name the upload, and the
-- payer's authorisation it was made under (sealed like API keys). A binding keeps the payer's
-- long-lived authorisation (scope bind), sealed too.
ALTER TABLE orders ADD COLUMN pay_ord_id TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN pay_token TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN pay_auth_no TEXT NOT NULL DEFAULT '';
ALTER TABLE bindings ADD COLUMN pay_auth_no TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bindings DROP COLUMN pay_auth_no;
ALTER TABLE orders DROP COLUMN pay_auth_no;
ALTER TABLE orders DROP COLUMN pay_token;
ALTER TABLE orders DROP COLUMN pay_ord_id;
