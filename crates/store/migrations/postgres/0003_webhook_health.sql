-- Delivery health per webhook, for auto-disable: when the last attempt succeeded, and since when
-- attempts have been failing without a success.
ALTER TABLE webhooks ADD COLUMN last_success_at BIGINT;
ALTER TABLE webhooks ADD COLUMN failing_since BIGINT;
