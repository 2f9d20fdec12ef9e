-- Both stores now list a webhook's deliveries through the (webhook_id, id) index of
-- `deliveries` itself; the view that gave SQLite's separate index and this one a common name
-- goes.
DROP VIEW webhook_deliveries;
