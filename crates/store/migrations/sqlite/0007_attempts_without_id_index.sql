-- Attempts are only ever read by delivery (`attempts_delivery`), so the separate unique index
-- on `id` was one more b-tree written for every attempt (and one more WAL page per commit).
-- Uniqueness moves into the delivery index: an attempt id belongs to one delivery and one
-- attempt number, so (delivery_id, attempt_no, id) is unique exactly when id is, and a
-- completion recorded twice (`ON CONFLICT ... DO NOTHING`) still inserts nothing.
-- SQLite cannot drop a primary key, so the table is rebuilt with the same columns.
CREATE TABLE attempts_new (
    id               TEXT NOT NULL,
    delivery_id      TEXT NOT NULL,
    attempt_no       BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    outcome          TEXT NOT NULL,
    status           BIGINT,
    request_headers  TEXT NOT NULL,
    response_headers TEXT NOT NULL,
    response_body    TEXT NOT NULL,
    error            TEXT
);
INSERT INTO attempts_new (id, delivery_id, attempt_no, started_at, duration_ms, outcome, status,
                          request_headers, response_headers, response_body, error)
    SELECT id, delivery_id, attempt_no, started_at, duration_ms, outcome, status,
           request_headers, response_headers, response_body, error
    FROM attempts ORDER BY delivery_id, attempt_no;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE UNIQUE INDEX attempts_delivery ON attempts (delivery_id, attempt_no, id);
