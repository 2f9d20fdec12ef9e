-- Retention looks up finished deliveries by state and age, and events by age.
CREATE INDEX deliveries_state_updated ON deliveries (state, updated_at);
CREATE INDEX events_created ON events (created_at);
