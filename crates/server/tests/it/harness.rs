//! `TestApp`: a real server on port 0 with a fresh store (a temp directory for SQLite, a fresh
//! schema for PostgreSQL), plus helpers that act as the operator and as an integrator.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidings_server::RunningServer;
use tidings_server::clock::Clock;
use tidings_server::config::Config;

pub const OPERATOR_KEY: &str = "test-operator-key-0123456789";
pub const PUBLIC_URL: &str = "http://tidings.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend for each scenario `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(tidings_pg), ignore = "PostgreSQL suite disabled: set TIDINGS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test")]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    server: Option<RunningServer>,
    env: Vec<(String, String)>,
    _data: tempfile::TempDir,
}

/// A fresh PostgreSQL schema; its URL selects it through `search_path`. Schemas of runs older
/// than an hour are dropped on the way.
async fn fresh_pg_schema() -> String {
    use sqlx::Connection;
    let base = std::env::var("TIDINGS_TEST_DATABASE_URL").expect("TIDINGS_TEST_DATABASE_URL");
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'it\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for s in old {
        let ts = s
            .split('_')
            .nth(1)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(now);
        if ts + 3600 < now {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {s} CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let schema = format!(
        "it_{now}_{}",
        tidings_core::ids::random_alnum(8).to_lowercase()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server; `settings` are extra `TIDINGS_*` variables.
    pub async fn spawn_with(backend: Backend, settings: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("TIDINGS_LISTEN".into(), "127.0.0.1:0".into()),
            ("TIDINGS_DATA_DIR".into(), data.path().display().to_string()),
            ("TIDINGS_OPERATOR_KEY".into(), OPERATOR_KEY.into()),
            ("TIDINGS_PUBLIC_URL".into(), PUBLIC_URL.into()),
            ("TIDINGS_ALLOW_ADDRESSES".into(), "127.0.0.0/8".into()),
            (
                "TIDINGS_DELIVERY__RETRY_SCHEDULE".into(),
                "300ms,300ms,300ms".into(),
            ),
            ("TIDINGS_DELIVERY__POLL_INTERVAL".into(), "50ms".into()),
            ("TIDINGS_DELIVERY__TIMEOUT".into(), "5s".into()),
            ("TIDINGS_DELIVERY__LEASE".into(), "10s".into()),
            ("TIDINGS_DELIVERY__SHUTDOWN_GRACE".into(), "2s".into()),
        ];
        if backend == Backend::Postgres {
            env.push(("TIDINGS_DATABASE_URL".into(), fresh_pg_schema().await));
        }
        // CI runs the suite a second time with SQLite as shipped.
        if let Ok(shims) = std::env::var("TIDINGS_DATABASE__SQLITE_SHIMS") {
            env.push(("TIDINGS_DATABASE__SQLITE_SHIMS".into(), shims));
        }
        for (k, v) in settings {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let clock = Clock::default();
        let mut app = Self {
            base: String::new(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            clock,
            server: None,
            env,
            _data: data,
        };
        app.boot().await;
        app
    }

    async fn boot(&mut self) {
        self.try_boot().await.expect("server starts");
    }

    async fn try_boot(&mut self) -> anyhow::Result<()> {
        let config = Config::load_from(None, &self.env)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = tidings_server::start(config, listener, self.clock.clone()).await?;
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
        Ok(())
    }

    /// Like [`TestApp::restart_with`], but the start may fail (its error is returned).
    pub async fn try_restart_with(&mut self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        self.stop().await;
        for (k, v) in settings {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.try_boot().await
    }

    /// The embedded store's data directory (also where the master key file is).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// A `TIDINGS_*` setting the server was started with.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Stops the server gracefully and starts a new one on the same store, with `settings`
    /// changed.
    pub async fn restart_with(&mut self, settings: &[(&str, &str)]) {
        self.stop().await;
        for (k, v) in settings {
            self.env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.boot().await;
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn operator(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(OPERATOR_KEY)
    }

    /// Creates a workspace with integration enabled; `extra` fields are merged into the body.
    pub async fn create_workspace(&self, id: &str, extra: Value) -> Value {
        let mut body = json!({"id": id, "name": format!("{id} Inc."), "integrationEnabled": true});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let r = self
            .operator(reqwest::Method::POST, "/v1/admin/workspaces")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    /// Creates an integration client; returns (clientId, clientSecret).
    pub async fn create_client(&self, workspace: &str) -> (String, String) {
        let r = self
            .operator(
                reqwest::Method::POST,
                &format!("/v1/admin/workspaces/{workspace}/clients"),
            )
            .json(&json!({"name": "test client"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        (
            v["clientId"].as_str().unwrap().into(),
            v["clientSecret"].as_str().unwrap().into(),
        )
    }

    /// The raw token endpoint response for a JSON body.
    pub async fn token_response(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let r = self
            .token_response(json!({"client_id": client_id, "client_secret": secret,
                "audience": PUBLIC_URL, "grant_type": "client_credentials"}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// A workspace with a client and a token for it: (token, clientId).
    pub async fn integrator(&self, workspace: &str) -> Integrator {
        self.create_workspace(workspace, json!({})).await;
        let (client_id, secret) = self.create_client(workspace).await;
        let token = self.token(&client_id, &secret).await;
        Integrator {
            token,
            client_id,
            workspace: workspace.to_string(),
        }
    }

    pub fn as_integrator(
        &self,
        who: &Integrator,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&who.token)
            .header("Workspace", &who.workspace)
    }

    /// Creates a webhook for `who` and returns the response body.
    pub async fn create_webhook(&self, who: &Integrator, body: Value) -> Value {
        let r = self
            .as_integrator(who, reqwest::Method::POST, "/v1/settings/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    /// Publishes an event as the operator; returns the 202 body.
    pub async fn publish(&self, body: Value) -> Value {
        let r = self
            .operator(reqwest::Method::POST, "/v1/events")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }
}

#[derive(Debug, Clone)]
pub struct Integrator {
    pub token: String,
    pub client_id: String,
    pub workspace: String,
}

/// The error code of a SPEC error body.
pub async fn error_code(r: reqwest::Response) -> (StatusCode, String, Value) {
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
        v,
    )
}

/// `GET path` as `who`, asserting a 200; the JSON body.
pub async fn get(app: &TestApp, who: &Integrator, path: &str) -> Value {
    let r = app
        .as_integrator(who, reqwest::Method::GET, path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// Polls until `check` holds (the worker records attempts asynchronously), for at most 15 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
