-- Payload options live in webhooks.spec (JSON); fan-out needs the unit filters without parsing
-- the whole spec, and rotation keeps the previous secret for a while.
ALTER TABLE webhooks ADD COLUMN branches TEXT NOT NULL DEFAULT '[]';
ALTER TABLE webhooks ADD COLUMN business_units TEXT NOT NULL DEFAULT '[]';
ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_expires BIGINT;
