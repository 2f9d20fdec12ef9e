-- The per-webhook delivery index goes back beside the database (webhook-index.db, attached as
-- `wix`; ADRs 0010, 0012 and 0020): the plain index of migration 0011 put a random leaf per
-- delivery into every publish's fsync, and with 10,000 webhooks doubled the saturated publish p99.
-- The file is rebuilt from `deliveries` at the first start after this upgrade.
DROP INDEX deliveries_webhook;
