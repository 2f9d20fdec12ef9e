-- Tidings schema, embedded SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- the same tables, columns and indexes; only types differ (times are Unix ms in BIGINT,
-- JSON is TEXT in both).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der BLOB NOT NULL,
    public_raw  BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    parent_id           TEXT,
    plan                TEXT NOT NULL,
    integration_enabled BOOLEAN NOT NULL,
    branches            TEXT NOT NULL,
    business_units      TEXT NOT NULL,
    fields              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX workspaces_parent ON workspaces (parent_id);

CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL,
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL,
    generation     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    regenerated_at BIGINT
);
CREATE INDEX clients_workspace ON clients (workspace_id, client_id);

CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    sample      TEXT NOT NULL,
    status_path TEXT,
    schema      TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id                       TEXT PRIMARY KEY,
    workspace_id             TEXT NOT NULL,
    owner_client_id          TEXT,
    status                   TEXT NOT NULL,
    apply_to_all_descendants BOOLEAN NOT NULL,
    spec                     TEXT NOT NULL,
    disabled_reason          TEXT,
    updated                  BIGINT NOT NULL,
    created_at               BIGINT NOT NULL
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id, id);

-- One row per (webhook, trigger): fan-out reads only the webhooks that match.
CREATE TABLE webhook_triggers (
    workspace_id TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, event_type, webhook_id)
);
CREATE INDEX webhook_triggers_webhook ON webhook_triggers (webhook_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    workspace_id     TEXT NOT NULL,
    data             TEXT NOT NULL,
    branch_id        TEXT,
    business_unit_id TEXT,
    subject_id       TEXT,
    sender           TEXT,
    origin_client_id TEXT,
    idempotency_key  TEXT,
    occurred_at      BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    deliveries       BIGINT NOT NULL,
    suppressed       BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The durable queue. A pending row is due when next_attempt_at <= now; claiming it sets
-- lease_owner and pushes next_attempt_at to the lease expiry, so a crashed node's work
-- becomes due again by itself.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    workspace_id    TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    last_status     BIGINT,
    last_outcome    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
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
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt_no);
