//! Tidings server: the HTTP API, authentication, and the delivery worker, wired together.
//!
//! [`start`] brings everything up on a listener the caller bound (port 0 in tests) and returns a
//! handle; [`run`] is `start` plus waiting for a shutdown signal. One cancellation token stops the
//! API (graceful: requests in flight finish) and the worker.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod delivery;
pub mod emulator_limits;
pub mod error;
pub mod history;
pub mod input;
pub mod listen;
pub mod logging;
pub mod master_key;
pub mod metrics;
pub mod publish_cache;
pub mod schemas;
pub mod state;
pub mod throttle;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tidings_core::secret::Secret;
use tidings_store::publisher::Publisher;
use tidings_store::{Backend, Store};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::keys::Keys;
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::Worker;
use crate::delivery::sender::Sender;
use crate::delivery::ssrf::AddressPolicy;
use crate::state::{AppState, Inner};

/// Where the configuration says the data lives.
pub fn backend(config: &Config) -> Backend {
    match &config.database_url {
        Some(url) => Backend::Postgres {
            url: url.expose().to_string(),
            max_connections: config.db_max_connections,
        },
        None => Backend::Sqlite {
            data_dir: config.data_dir.clone(),
            shims: config.sqlite_shims,
        },
    }
}

/// Opens the store with the master key, applies migrations and seals with the master key's
/// first key whatever is not sealed with it yet (`tidings migrate`, and every start).
pub async fn open_store(config: &Config) -> anyhow::Result<(Store, master_key::MasterKey)> {
    let master = master_key::load(config)?;
    let store = Store::open(&backend(config), master.keys.clone())
        .await
        .context("opening the store")?;
    store.migrate().await.context("applying migrations")?;
    let resealed = store
        .reseal()
        .await
        .context("sealing the stored secrets with the master key")?;
    master_key::forget_older(&master).context("rewriting the master key file")?;
    tracing::debug!(resealed, kid = master.keys.get().kid(), "secrets sealed");
    Ok((store, master))
}

/// Creates the workspace of operational events on first start (integration on, default plan).
async fn ensure_operational_workspace(
    store: &Store,
    config: &Config,
    now: i64,
) -> anyhow::Result<()> {
    let id = &config.operational_workspace;
    if store.workspace_get(id).await?.is_some() {
        return Ok(());
    }
    let ws = tidings_core::workspace::Workspace {
        id: id.clone(),
        name: "Tidings operational events".into(),
        kind: tidings_core::workspace::WorkspaceType::Regular,
        parent_id: None,
        plan: config.default_plan.clone(),
        integration_enabled: true,
        notifications_enabled: true,
        branches: Vec::new(),
        business_units: Vec::new(),
        fields: Default::default(),
        created_at: now,
    };
    match store.workspace_create(&ws).await {
        Ok(()) | Err(tidings_store::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e).context("creating the operational workspace"),
    }
}

/// The retention pass, every `interval` until shutdown.
async fn retention(
    store: Store,
    config: config::RetentionConfig,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.interval) => {}
        }
        let now = clock.now_ms();
        match store
            .prune(
                now.saturating_sub(ms(config.succeeded)),
                now.saturating_sub(ms(config.failed)),
                5000,
            )
            .await
        {
            Ok(r) if r.deliveries + r.events > 0 => {
                tracing::info!(
                    deliveries = r.deliveries,
                    attempts = r.attempts,
                    events = r.events,
                    "retention pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "retention pass failed"),
        }
        // Portal links are kept a day past their expiry, so a late click is told "used or
        // expired" rather than nothing.
        if let Err(e) = store
            .console_prune(now, now.saturating_sub(86_400_000))
            .await
        {
            tracing::warn!(error = ?e, "pruning console sessions failed");
        }
    }
}

/// A server that is up. Dropping it does not stop it: call [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub clock: Clock,
    /// The operator key generated by this start (printed once), if one was.
    pub generated_operator_key: Option<Secret>,
    pub public_url: String,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
    store: Store,
    /// Dropped last: after `shutdown` has waited for the worker (a plain drop aborts it, as it
    /// aborts the other tasks).
    _delivery: Option<DeliveryRuntime>,
}

/// The delivery worker's own tokio runtime (`delivery.threads` threads named
/// `tidings-delivery`). The worker, its notification tasks and the HTTP client's connections run
/// there; the API, the publisher and retention stay on the caller's runtime. On one shared
/// runtime a publish request queued behind hundreds of notification tasks at every step, and
/// with a closed-loop publisher that latency capped throughput (ADR 0006).
///
/// Dropped without blocking: a runtime must not be dropped where blocking is not allowed (any
/// async context), so whatever is left (idle pooled connections) is abandoned to
/// `shutdown_background`. [`RunningServer::shutdown`] has waited for the worker before that.
#[derive(Debug)]
struct DeliveryRuntime(Option<tokio::runtime::Runtime>);

impl Drop for DeliveryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl RunningServer {
    /// Stops accepting requests, lets requests and deliveries in flight finish (within the
    /// grace period), flushes what is pending and closes the store.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.store.close().await;
    }

    /// Resolves when the server stopped by itself (it should not) or was shut down.
    pub async fn stopped(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the API and (unless disabled) the delivery worker on `listener`.
pub async fn start(
    mut config: Config,
    listener: TcpListener,
    clock: Clock,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    config.resolve_public_url(addr);
    let (store, master_key) = open_store(&config).await?;
    let now = clock.now_ms();
    store
        .event_types_seed(&tidings_core::event::default_event_types(), now)
        .await
        .context("seeding event types")?;
    ensure_operational_workspace(&store, &config, now).await?;
    if store.is_single_node() {
        let released = store.release_all_leases(now).await?;
        if released > 0 {
            tracing::info!(
                released,
                "deliveries in flight at the last stop are due again"
            );
        }
    }
    let keys = Arc::new(
        Keys::load_or_create(&store, now)
            .await
            .context("loading signing keys")?,
    );
    let (operator_key_hash, generated) =
        auth::operator::resolve(&store, config.operator_key.as_ref())
            .await
            .context("resolving the operator key")?;

    let metrics = crate::metrics::Metrics::default();
    let wake = Arc::new(Notify::new());
    let wake_api = wake.clone();
    let node_id = format!("node-{}", tidings_core::ids::random_alnum(12));
    // New deliveries go straight to this node's worker while it has room (see
    // `delivery::handoff`); an API-only node leaves them all to the workers' claims.
    let (handoff, intake) = if config.delivery.enabled {
        let capacity = delivery::room::Capacity::new(&config.delivery);
        let (to, intake) = delivery::room::channel(&node_id, config.delivery.lease, capacity);
        (Some(to as Arc<dyn tidings_store::Handoff>), Some(intake))
    } else {
        (None, None)
    };
    let (publisher, publisher_task) =
        Publisher::spawn(store.clone(), config.publish_batch, wake.clone(), handoff);
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        let _ = publisher_task.await;
    });

    let sender = Sender::new(
        AddressPolicy::new(config.allow_addresses.clone()),
        &config.delivery,
        keys.clone(),
        config.public_url.clone(),
        Arc::new(listen::Sessions::new(shutdown.clone())),
    )
    .context("building the HTTP client")?;
    let mut delivery_runtime = None;
    let worker_slots = intake.as_ref().map(|i| i.capacity.slots.clone());
    if let Some(intake) = intake {
        let worker = Worker {
            store: store.clone(),
            config: config.delivery.clone(),
            clock: clock.clone(),
            sender: sender.clone(),
            node_id,
            wake,
            publisher: publisher.clone(),
            operational_workspace: config.operational_workspace.clone(),
            metrics: metrics.clone(),
        };
        // Its own threads: see `DeliveryRuntime`.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.delivery.threads)
            .thread_name("tidings-delivery")
            .enable_all()
            .build()
            .context("starting the delivery worker's threads")?;
        let running = runtime.spawn(worker.run(shutdown.clone(), intake));
        delivery_runtime = Some(DeliveryRuntime(Some(runtime)));
        tasks.spawn(async move {
            let _ = running.await;
        });
    }

    tasks.spawn(listen::janitor(
        sender.sessions().clone(),
        store.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(retention(
        store.clone(),
        config.retention.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    let throttle = Arc::new(throttle::Throttle::new(config.token_limits));
    let emulator_limits = Arc::new(emulator_limits::EmulatorLimits::new(config.emulator));
    let sweep = emulator_limits.clone();
    tasks.spawn(throttle::report(
        throttle.clone(),
        move || sweep.sweep(),
        shutdown.clone(),
    ));
    let history = history::History::default();
    tasks.spawn(history::sample(
        store.clone(),
        metrics.clone(),
        history.clone(),
        clock.clone(),
        shutdown.clone(),
    ));

    let public_url = config.public_url.clone();
    let state = AppState(Arc::new(Inner {
        config,
        store: store.clone(),
        publisher,
        keys,
        master_key,
        sender,
        clock: clock.clone(),
        operator_key_hash,
        schemas: Default::default(),
        cache: crate::publish_cache::Cache::for_store(&store),
        metrics: metrics.clone(),
        worker_slots,
        history,
        throttle,
        emulator_limits,
        wake: wake_api,
    }));
    let app = api::router(state);
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(
            // Responses go out at once instead of waiting on Nagle's algorithm.
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            // Each connection clones the router as it is: serving the `Router` itself would rebuild
            // its route table for every connection (`with_state(())`, ~45,000 instructions).
            // The peer's address reaches the handlers (rate limits per source address).
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(%addr, store = store.kind(), "tidings is listening");
    Ok(RunningServer {
        addr,
        clock,
        generated_operator_key: generated,
        public_url,
        shutdown,
        tasks,
        store,
        _delivery: delivery_runtime,
    })
}

/// Runs until `signal` resolves, then shuts down gracefully.
pub async fn run(
    config: Config,
    listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut server = start(config, listener, Clock::default()).await?;
    if let Some(key) = &server.generated_operator_key {
        // Printed, not logged: it must not end up in log storage, and it is shown only once.
        println!(
            "\nGenerated operator API key (shown once; only its hash is stored):\n\n    {}\n\nUse it as 'Authorization: Bearer <key>' on /v1/admin and /v1/events, or set TIDINGS_OPERATOR_KEY.\n",
            key.expose()
        );
    }
    tokio::select! {
        () = signal => {
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        () = server.stopped() => {}
    }
    Ok(())
}
