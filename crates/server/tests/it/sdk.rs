//! The Rust client (`tidings-client`) against a real server: lists read page after page as one
//! stream, the integrator's token fetched and fetched again, the API's errors typed.

use futures::TryStreamExt;
use serde_json::json;
use tidings_client::{Client, Error, NewEvent, WebhookInput, WorkspaceInput};

use crate::harness::{Backend, OPERATOR_KEY, TestApp};
use crate::receiver::TestReceiver;

async fn the_client_pages_fetches_tokens_and_types_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = Client::operator(&app.base, OPERATOR_KEY).unwrap();

    // 230 workspaces: three pages of 100 read as one stream, in order, each once.
    for i in 0..230 {
        operator
            .create_workspace(&WorkspaceInput {
                id: Some(format!("ws{i:03}")),
                name: format!("Workspace {i}"),
                integration_enabled: Some(true),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let all: Vec<_> = operator.workspaces().try_collect().await.unwrap();
    let ours: Vec<_> = all
        .iter()
        .filter(|w| w.id.starts_with("ws"))
        .map(|w| w.id.clone())
        .collect();
    assert_eq!(ours.len(), 230);
    let unique: std::collections::HashSet<_> = ours.iter().collect();
    assert_eq!(unique.len(), 230);

    // The API's error body, typed.
    match operator.workspace("nosuch").await {
        Err(e @ Error::Api { status: 404, .. }) => assert_eq!(e.code(), Some("not_found")),
        other => panic!("{other:?}"),
    }
    let refused = operator
        .create_workspace(&WorkspaceInput {
            id: Some("..".into()),
            name: "dots".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    match refused {
        Error::Api {
            status, details, ..
        } => {
            assert_eq!(status, 422);
            assert_eq!(details[0].field, "id");
        }
        other => panic!("{other:?}"),
    }

    // The integrator side: a token is fetched on first use.
    let creds = operator.create_client("ws000", "sdk").await.unwrap();
    let secret = creds.client_secret.clone().unwrap();
    let integrator = Client::integrator(&app.base, &creds.client_id, &secret, "ws000").unwrap();
    let receiver = TestReceiver::start().await;
    let webhook = integrator
        .create_webhook(&WebhookInput {
            url: Some(receiver.url("/hook")),
            triggers: Some(vec!["workorder.created".into()]),
            status: Some("enabled".into()),
            apply_to_all_descendants: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let published = operator
        .publish(&NewEvent {
            kind: "workorder.created".into(),
            workspace_id: "ws000".into(),
            data: json!({"n": 1}),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(published.deliveries, 1);
    let deliveries: Vec<_> = integrator
        .deliveries(&webhook.id, None)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_id, published.id);

    // Regenerated credentials: the cached token is refused, the client fetches a new one with
    // its (now wrong) secret, and says why it cannot.
    operator
        .regenerate_client("ws000", &creds.client_id)
        .await
        .unwrap();
    match integrator.webhook(&webhook.id).await {
        Err(Error::OAuth {
            status: 401, error, ..
        }) => assert_eq!(error, "invalid_client"),
        other => panic!("{other:?}"),
    }
}

crate::both_backends!(the_client_pages_fetches_tokens_and_types_errors);
