//! The `tidings` binary: the server (a thin shell over `tidings-server`: arguments,
//! configuration, logging, signals), its benchmark, a local receiver, and the command line over
//! a server's HTTP API (`commands`, built on `tidings-client`).
#![forbid(unsafe_code)]

mod bench;
mod commands;
mod progress;
mod receive;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tidings_server::config::Config;

/// jemalloc instead of the system allocator: the request and delivery paths allocate a lot of
/// short-lived buffers (see docs/perf-log/rounds-2026-11-24-to-12-05.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about = "Self-hosted webhook platform: signed, retried, durable notifications",
    after_help = "Examples:\n\n    tidings serve\n    tidings login --server http://127.0.0.1:8080 --operator-key KEY\n    tidings workspaces list"
)]
struct Cli {
    /// The server's configuration file (serve, migrate; default: ./tidings.toml when it
    /// exists). Environment variables (TIDINGS_*) override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    connection: commands::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the delivery worker (migrates the store first).
    #[command(
        after_help = "Example:\n\n    TIDINGS_OPERATOR_KEY=$(openssl rand -hex 24) tidings serve"
    )]
    Serve,
    /// Apply database migrations and exit.
    #[command(
        after_help = "Example:\n\n    TIDINGS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tidings tidings migrate"
    )]
    Migrate,
    /// Print the embedded default configuration (every setting, commented).
    #[command(after_help = "Example:\n\n    tidings default-config > tidings.toml")]
    DefaultConfig,
    /// Save a server URL and credentials as a profile of the CLI config file.
    Login(commands::Login),
    /// Workspaces (operator).
    #[command(
        subcommand,
        after_help = "Examples:\n\n    tidings workspaces create --id acme --name 'Acme Inc.' --integration-enabled\n    tidings workspaces list"
    )]
    Workspaces(commands::WorkspacesCommand),
    /// Integration client credentials of workspaces (operator).
    #[command(
        subcommand,
        after_help = "Example:\n\n    tidings clients create acme --name 'Acme ERP'"
    )]
    Clients(commands::ClientsCommand),
    /// The event-type catalog (operator).
    #[command(subcommand, after_help = "Example:\n\n    tidings event-types list")]
    EventTypes(commands::EventTypesCommand),
    /// Publish and find events (operator).
    #[command(
        subcommand,
        after_help = "Example:\n\n    tidings events publish --type invoice.paid --to acme --data '{\"amount\": 42}'"
    )]
    Events(commands::EventsCommand),
    /// Keys of the server (operator).
    #[command(subcommand, after_help = "Example:\n\n    tidings keys rotate-master")]
    Keys(commands::KeysCommand),
    /// Webhooks of a workspace (integrator).
    #[command(
        subcommand,
        after_help = "Examples:\n\n    tidings webhooks create --url https://example.com/hooks --triggers invoice.paid\n    tidings webhooks list"
    )]
    Webhooks(commands::WebhooksCommand),
    /// Deliveries and their attempts (integrator).
    #[command(
        subcommand,
        after_help = "Examples:\n\n    tidings deliveries list WEBHOOK_ID --state failed\n    tidings deliveries tail WEBHOOK_ID"
    )]
    Deliveries(commands::DeliveriesCommand),
    /// Receive the workspace's notifications on this machine and forward them to a local URL
    /// (integrator).
    Listen(commands::listen::Listen),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n\n    tidings completions bash > /etc/bash_completion.d/tidings\n    tidings completions zsh > \"${fpath[1]}/_tidings\"\n    tidings completions fish > ~/.config/fish/completions/tidings.fish"
    )]
    Completions { shell: clap_complete::Shell },
    /// Print every command's help as Markdown (docs/cli-reference.md is this output).
    #[command(hide = true)]
    HelpMarkdown,
    /// Run the benchmark scenarios against a fresh server and print one JSON line each.
    #[command(
        after_help = "Examples:\n\n    tidings bench\n    tidings bench --scenarios fanout1,latency --duration 30s\n    tidings bench --scenarios soak --duration 10m"
    )]
    Bench {
        /// Comma-separated scenarios (default: all but soak): baseline, fanout1, fanout10,
        /// latency, backlog, many-webhooks; soak (half the maximum rate for 30 minutes, receivers
        /// failing at random: memory, database size and queue depth over time).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Load duration of each scenario (default 10s; `soak`: 30m).
        #[arg(long, value_parser = humantime_duration)]
        duration: Option<std::time::Duration>,
        /// Concurrent connections of the load generator.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Events per second of the latency scenario.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Deliveries queued by the backlog scenario.
        #[arg(long, default_value_t = 1_000_000)]
        backlog: u64,
        /// Webhooks of the many-webhooks scenario ...
        #[arg(long, default_value_t = 10_000)]
        webhooks: usize,
        /// ... spread over this many workspaces.
        #[arg(long, default_value_t = 1_000)]
        workspaces: usize,
        /// Benchmark PostgreSQL instead of the embedded store.
        #[arg(long)]
        database_url: Option<String>,
        /// A smoke run of a few seconds (tiny sizes), for CI.
        #[arg(long)]
        quick: bool,
    },
    /// Run a small webhook receiver that prints notifications and checks their signatures.
    #[command(
        after_help = "Example:\n\n    tidings receive --listen 127.0.0.1:9000 --secret whsec_…"
    )]
    Receive {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// The webhook's secret, to verify the `webhook-signature` header.
        #[arg(long)]
        secret: Option<String>,
        /// HTTP status to answer with.
        #[arg(long, default_value_t = 204)]
        status: u16,
    },
}

fn humantime_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        // Field values with their control characters escaped: a caller's text cannot forge a
        // line (tidings_server::logging).
        builder.fmt_fields(tidings_server::logging::fields()).init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Runs a command over a server's API; `None` for the server's own commands.
async fn client_command(cli: &mut Cli) -> Option<commands::Outcome> {
    use commands as c;
    let conn = cli.connection.clone();
    let command = std::mem::replace(&mut cli.command, Command::HelpMarkdown);
    Some(match command {
        Command::Login(args) => c::login(&conn, &args).await,
        Command::Workspaces(cmd) => c::operator::workspaces(&conn, cmd).await,
        Command::Clients(cmd) => c::operator::clients(&conn, cmd).await,
        Command::EventTypes(cmd) => c::operator::event_types(&conn, cmd).await,
        Command::Events(cmd) => c::operator::events(&conn, cmd).await,
        Command::Keys(cmd) => c::operator::keys(&conn, cmd).await,
        Command::Webhooks(cmd) => c::integrator::webhooks(&conn, cmd).await,
        Command::Deliveries(cmd) => c::integrator::deliveries(&conn, cmd).await,
        Command::Listen(args) => c::listen::listen(&conn, &args).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tidings", &mut std::io::stdout());
            Ok(())
        }
        Command::HelpMarkdown => {
            print!("{}", clap_markdown::help_markdown::<Cli>());
            Ok(())
        }
        other => {
            cli.command = other;
            return None;
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if let Some(outcome) = client_command(&mut cli).await {
        if let Err(failure) = outcome {
            eprintln!("error: {}", failure.message);
            std::process::exit(failure.code);
        }
        return Ok(());
    }
    match cli.command {
        Command::DefaultConfig => {
            print!("{}", tidings_server::config::DEFAULT_TOML);
            return Ok(());
        }
        Command::Receive {
            listen,
            secret,
            status,
        } => {
            return receive::run(receive::Options {
                listen,
                secret,
                status,
            })
            .await;
        }
        Command::Bench {
            scenarios,
            duration,
            connections,
            rate,
            backlog,
            webhooks,
            workspaces,
            database_url,
            quick,
        } => {
            let scenarios = if scenarios.is_empty() {
                bench::ALL.iter().map(|s| s.to_string()).collect()
            } else {
                scenarios
            };
            let opts = if quick {
                bench::Options {
                    scenarios,
                    duration: std::time::Duration::from_millis(500),
                    soak: duration.unwrap_or(std::time::Duration::from_secs(3)),
                    connections: 4,
                    rate: 100,
                    backlog: 500,
                    webhooks: 20,
                    workspaces: 5,
                    database_url,
                }
            } else {
                bench::Options {
                    scenarios,
                    duration: duration.unwrap_or(std::time::Duration::from_secs(10)),
                    soak: duration.unwrap_or(std::time::Duration::from_secs(30 * 60)),
                    connections,
                    rate,
                    backlog,
                    webhooks,
                    workspaces,
                    database_url,
                }
            };
            return bench::run(opts).await;
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    init_logging(config.log_json);
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            tidings_server::run(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            let (store, _) = tidings_server::open_store(&config).await?;
            tracing::info!(store = store.kind(), "migrations applied");
            store.close().await;
            Ok(())
        }
        _ => Ok(()),
    }
}
