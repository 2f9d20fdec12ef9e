-- Claims skip webhooks that are at their in-flight limit: with webhook_id in the index the
-- skipped rows are judged from the index alone, without reading each row.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, webhook_id) WHERE state = 'pending';
