-- The (state, updated_at) index of 0004 lured the planner into using it for the claim query
-- (`state = 'pending' ORDER BY next_attempt_at`), scanning and sorting every pending delivery.
-- Retention gets partial indexes that the claim cannot pick instead.
DROP INDEX deliveries_state_updated;
CREATE INDEX deliveries_succeeded_age ON deliveries (updated_at) WHERE state = 'succeeded';
CREATE INDEX deliveries_finished_age ON deliveries (updated_at) WHERE state IN ('failed', 'cancelled');
