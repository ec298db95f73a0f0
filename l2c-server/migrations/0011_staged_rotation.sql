-- Staged webhook secret rotation (issue 17). Portable between SQLite and PostgreSQL.
--
-- After a rotation the spec's one-value `X-L2C-Signature` keeps signing with the previous
-- secret until the partner promotes the new one (`POST …/promote-secret` or the console) or
-- the overlap ends; `webhook-signature` carries both throughout. NULL while a rotation is
-- staged (or none is under way); the promotion's unix-millisecond time once promoted.
ALTER TABLE webhook_subscriptions ADD COLUMN secret_promoted_at BIGINT;
-- Rotations already under way were made when the new secret signed `X-L2C-Signature` at once:
-- they count as promoted, so those receivers see no change.
UPDATE webhook_subscriptions SET secret_promoted_at = created_at
    WHERE previous_secret IS NOT NULL;

-- Token-signing key rotation (`l2c-server keys rotate`). A key is published (JWKS, and every
-- replica's verifier) from its creation, signs from `activates_at`, and is dropped from both at
-- `retires_at` (set when a successor is added: once the last token it signed has expired).
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retires_at BIGINT;
UPDATE signing_keys SET activates_at = created_at;
