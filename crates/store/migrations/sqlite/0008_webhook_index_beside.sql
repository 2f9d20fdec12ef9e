-- The per-webhook delivery index moves beside the database (webhook-index.db, attached as
-- `wix`; see docs/adr/0010-per-webhook-index-beside-the-database.md): written with each
-- delivery but outside the publish's fsync, and rebuilt after any start without a clean shutdown.
DROP INDEX deliveries_webhook;
