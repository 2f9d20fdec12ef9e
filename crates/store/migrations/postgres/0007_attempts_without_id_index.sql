-- Attempts are only ever read by delivery (`attempts_delivery`), so the separate unique index
-- on `id` was one more b-tree written for every attempt. Uniqueness moves into the delivery
-- index: an attempt id belongs to one delivery and one attempt number, so
-- (delivery_id, attempt_no, id) is unique exactly when id is, and a completion recorded twice
-- (`ON CONFLICT ... DO NOTHING`) still inserts nothing. Same change as the SQLite 0007.
ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ALTER COLUMN id SET NOT NULL;
DROP INDEX attempts_delivery;
CREATE UNIQUE INDEX attempts_delivery ON attempts (delivery_id, attempt_no, id);
