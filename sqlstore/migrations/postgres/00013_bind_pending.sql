-- +goose Up
-- A bind link remembers, sealed, the identity the bureau verified (1101) while the payer is away
-- at the bureau's authorisation page; the card is bound when the authorisation comes back for
-- the same person.
ALTER TABLE bind_links ADD COLUMN pending TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bind_links DROP COLUMN pending;
