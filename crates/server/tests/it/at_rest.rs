//! Secrets at rest: what the database holds is sealed with the master key, the data directory
//! is its owner's only, and the master key rotates online.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, get};

const SECRET: &str = "at-rest-first-secret-0123456789";
const NEXT_SECRET: &str = "at-rest-second-secret-9876543210";
const HEADER_VALUE: &str = "at-rest-header-value-24680";
const NAME: &str = "at-rest-probe-name";

/// A webhook with a secret, a custom header and (after a rotation) a previous secret.
async fn webhook_with_secrets(app: &TestApp) -> (crate::harness::Integrator, String) {
    let who = app.integrator("acme").await;
    let hook = app
        .create_webhook(
            &who,
            json!({"name": NAME, "applyToAllDescendants": false, "url": "https://hooks.example.com/in",
                "triggers": ["workorder.created"], "status": "enabled", "secret": SECRET,
                "headers": {"X-Api_Key": HEADER_VALUE}}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let r = app
        .as_integrator(
            &who,
            Method::POST,
            &format!("/v1/settings/webhooks/{id}/secret/rotate"),
        )
        .json(&json!({"secret": NEXT_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    (who, id)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The stored spec, previous secret and private signing keys, as the database holds them.
async fn stored(app: &TestApp, backend: Backend) -> (Vec<(String, Option<String>)>, Vec<Vec<u8>>) {
    use sqlx::{Connection, Row};
    let (webhooks, keys) = match backend {
        Backend::Sqlite => {
            let url = format!(
                "sqlite://{}?mode=ro",
                app.data_dir().join("tidings.db").display()
            );
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let w = sqlx::query("SELECT spec, previous_secret FROM webhooks")
                .fetch_all(&mut c)
                .await
                .unwrap();
            let k = sqlx::query("SELECT private_der FROM signing_keys")
                .fetch_all(&mut c)
                .await
                .unwrap();
            (
                w.iter().map(|r| (r.get(0), r.get(1))).collect(),
                k.iter().map(|r| r.get(0)).collect(),
            )
        }
        Backend::Postgres => {
            let url = app.setting("TIDINGS_DATABASE_URL").unwrap();
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let w = sqlx::query("SELECT spec, previous_secret FROM webhooks")
                .fetch_all(&mut c)
                .await
                .unwrap();
            let k = sqlx::query("SELECT private_der FROM signing_keys")
                .fetch_all(&mut c)
                .await
                .unwrap();
            (
                w.iter().map(|r| (r.get(0), r.get(1))).collect(),
                k.iter().map(|r| r.get(0)).collect(),
            )
        }
    };
    (webhooks, keys)
}

async fn the_database_holds_no_secret_in_clear(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (who, id) = webhook_with_secrets(&app).await;
    // The API still gives the webhook's own workspace its secret.
    let hook = get(&app, &who, &format!("/v1/settings/webhooks/{id}")).await;
    assert_eq!(hook["secret"], NEXT_SECRET, "{hook}");
    let (webhooks, keys) = stored(&app, backend).await;
    let (spec, previous) = &webhooks[0];
    assert!(
        spec.contains(NAME),
        "the probe reads the right column: {spec}"
    );
    for secret in [SECRET, NEXT_SECRET, HEADER_VALUE] {
        assert!(!spec.contains(secret), "{secret} in clear in {spec}");
    }
    assert!(
        previous
            .as_deref()
            .is_some_and(|p| p.starts_with("enc:v1:")),
        "{previous:?}"
    );
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(
            key.starts_with(b"enc:v1:"),
            "a private signing key in clear"
        );
    }
    if backend == Backend::Sqlite {
        app.stop().await;
        let mut files = 0;
        for entry in std::fs::read_dir(app.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == "master.key" {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            files += usize::from(contains(&raw, NAME));
            for secret in [SECRET, NEXT_SECRET, HEADER_VALUE] {
                assert!(
                    !contains(&raw, secret),
                    "{secret} in clear in {}",
                    path.display()
                );
            }
        }
        assert!(
            files > 0,
            "the raw files hold the webhook (the probe reads them)"
        );
    }
}

async fn the_data_directory_is_its_owners_only(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(backend).await;
    webhook_with_secrets(&app).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(app.data_dir()), 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(app.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        names.push(path.file_name().unwrap().to_string_lossy().to_string());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(names.contains(&"master.key".to_string()), "{names:?}");
}

async fn rotate(app: &TestApp) -> reqwest::Response {
    app.operator(Method::POST, "/v1/admin/master-key/rotate")
        .send()
        .await
        .unwrap()
}

async fn the_master_key_rotates_online_and_a_wrong_key_is_refused_at_start(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (who, id) = webhook_with_secrets(&app).await;
    let key_file = app.data_dir().join("master.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let r = rotate(&app).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    assert!(rotated["resealed"].as_u64().unwrap() >= 2, "{rotated}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after);
    assert_eq!(after.trim().lines().count(), 1, "only the new key is kept");
    // Everything opens with the new key: the webhook's secret, and the signing key that
    // signs access tokens.
    let hook = get(&app, &who, &format!("/v1/settings/webhooks/{id}")).await;
    assert_eq!(hook["secret"], NEXT_SECRET);
    let (client, secret) = app.create_client("acme").await;
    app.token(&client, &secret).await;
    let (webhooks, _) = stored(&app, backend).await;
    let kid = rotated["kid"].as_str().unwrap();
    assert!(
        webhooks[0].0.contains(&format!("enc:v1:{kid}:")),
        "{}",
        webhooks[0].0
    );
    // A server given another key refuses to start, naming the key it lacks.
    let wrong = tidings_core::seal::generate_key();
    let err = app
        .try_restart_with(&[("TIDINGS_MASTER_KEY", &wrong)])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains(kid), "{err:#}");
    // With the right key from the environment it starts; the endpoint then refuses to rotate.
    app.restart_with(&[("TIDINGS_MASTER_KEY", after.trim())])
        .await;
    let hook = get(&app, &who, &format!("/v1/settings/webhooks/{id}")).await;
    assert_eq!(hook["secret"], NEXT_SECRET);
    assert_eq!(rotate(&app).await.status(), StatusCode::CONFLICT);
}

crate::both_backends!(
    the_data_directory_is_its_owners_only,
    the_database_holds_no_secret_in_clear,
    the_master_key_rotates_online_and_a_wrong_key_is_refused_at_start,
);
