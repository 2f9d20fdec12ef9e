-- A webhook's deliveries are listed through a plain index in this database, as on PostgreSQL,
-- instead of the per-webhook index kept in a file beside it (migration 0008, ADR 0010/0012,
-- superseded). Building it reads every delivery once, at this upgrade.
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
