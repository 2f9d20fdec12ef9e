-- The embedded store keeps its per-webhook delivery index in a table beside the database
-- (webhook_deliveries, docs/adr/0010-per-webhook-index-beside-the-database.md); here the
-- same name is a view over deliveries and its (webhook_id, id) index, so both run the same SQL.
CREATE VIEW webhook_deliveries AS SELECT webhook_id AS hook_id, id AS delivery_id FROM deliveries;
