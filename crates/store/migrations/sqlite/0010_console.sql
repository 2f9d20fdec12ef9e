-- The console (docs/console.md): the portal's workspace-wide notification switch, console
-- sessions and one-time portal links. Both keep only a SHA-256 of their secret; a session or
-- link is found by that hash.
ALTER TABLE workspaces ADD COLUMN notifications_enabled BOOLEAN NOT NULL DEFAULT 1;

CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    -- 'operator' or 'portal'
    kind         TEXT NOT NULL,
    -- portal: the workspace the session acts on (and, for a channel, its children)
    workspace_id TEXT,
    return_url   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE portal_links (
    token_hash   TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    return_url   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    -- set once, by the one request that used the link
    used_at      BIGINT
);
CREATE INDEX portal_links_expiry ON portal_links (expires_at);
