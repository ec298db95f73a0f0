//! Binding, serving and shutting down.
//!
//! [`serve`] is `l2c-server serve`: connect to the database (migrating it), create the demo
//! client on an empty database, bind, log the address, and serve until SIGINT/SIGTERM, letting
//! in-flight requests finish within `--drain-timeout`. [`Server`] is the same in parts, for
//! tests and embedders. Connections are accepted and bounded by [`crate::connections`]; `GET
//! /metrics` has a listener of its own (`--metrics-listen`), never the public one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use l2c_core::Scopes;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ConfigError};
use crate::connections::{self, Endpoint};
use crate::state::{AppState, StateError};
use crate::store::{Db, NewClient, StoreError};
use crate::tls::load_server_config;
use crate::tokens::TokensError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration value was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The signing key could not be set up.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// `--redis-url` is set but Redis cannot be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// Serving failed.
    #[error("server: {0}")]
    Io(#[from] io::Error),
}

/// A bound server, not yet accepting.
pub struct Server {
    tcp: TcpListener,
    acceptor: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    metrics: Option<(TcpListener, SocketAddr)>,
    max_connections: usize,
    app: Router,
    dispatcher: Option<crate::dispatch::Dispatcher>,
    request_log: Option<crate::observe::request_log::RequestLogWriter>,
    state: AppState,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.acceptor.is_some())
            .field("metrics_addr", &self.metrics_addr())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Descriptors the server needs besides its connections: the database pool, Redis, webhook
/// deliveries (one connection each of a batch), and a margin for the listeners, logs and files.
fn fd_reserve(state: &AppState) -> u64 {
    let pool = u64::from(state.db.max_connections());
    let redis = if state.config.redis_url.is_some() {
        2
    } else {
        0
    };
    let webhooks = if state.config.webhooks.dispatcher {
        u64::from(state.config.webhooks.batch_size)
    } else {
        0
    };
    pool + redis + webhooks + 16
}

impl Server {
    /// Binds `state.config.listen` (HTTPS when TLS files are configured) serving [`crate::app`].
    ///
    /// # Errors
    ///
    /// [`StartError::Bind`] when the address (or the metrics address) is taken,
    /// [`StartError::Config`] for unusable TLS files.
    pub async fn bind(state: AppState) -> Result<Self, StartError> {
        Self::bind_with(state, crate::ExtraRoutes::default()).await
    }

    /// As [`Server::bind`], serving [`crate::app_with`] with `extra` routes.
    ///
    /// # Errors
    ///
    /// As [`Server::bind`].
    pub async fn bind_with(state: AppState, extra: crate::ExtraRoutes) -> Result<Self, StartError> {
        let addr = state.config.listen;
        let tls = state
            .config
            .tls
            .as_ref()
            .map(load_server_config)
            .transpose()?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local_addr = tcp.local_addr()?;
        let metrics = match state.config.metrics_listen {
            Some(addr) => {
                let tcp = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let bound = tcp.local_addr()?;
                Some((tcp, bound))
            }
            None => None,
        };
        let max_connections = state
            .config
            .connections
            .max_connections
            .unwrap_or_else(|| {
                connections::derive_max_connections(
                    connections::open_files_soft_limit(),
                    fd_reserve(&state),
                )
            })
            .min(Semaphore::MAX_PERMITS);
        let dispatcher = state
            .config
            .webhooks
            .dispatcher
            .then(|| crate::dispatch::Dispatcher::from_state(&state));
        let request_log = state.request_log.writer(
            state.db.clone(),
            state.config.request_logs.clone(),
            Some(std::sync::Arc::clone(&state.metrics)),
        );
        Ok(Self {
            dispatcher,
            request_log,
            acceptor: tls.map(TlsAcceptor::from),
            tcp,
            local_addr,
            metrics,
            max_connections,
            app: crate::app_with(state.clone(), extra),
            state,
        })
    }

    /// The address of the metrics listener (the real port when configured with port 0), or
    /// `None` when `--metrics-listen off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The cap on open connections of the public listener (`--max-connections` or derived).
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://…` or `https://…` of the bound address (`127.0.0.1` for an unspecified IP).
    pub fn base_url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if self.acceptor.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// Serves until `shutdown` completes, then stops accepting and waits for in-flight requests
    /// (at most `--drain-timeout`, then the remaining connections are closed).
    /// While serving, the per-client quotas and the token signing keys are re-read from the
    /// database every `quota_refresh` (see [`crate::limits`], [`crate::tokens`]).
    ///
    /// The webhook dispatcher (unless disabled in the configuration) runs alongside and is
    /// stopped after the last request, letting its attempts in flight finish; so does the
    /// request-log writer, which writes every queued record before it stops. Dropping the
    /// returned future instead aborts both, like a killed process.
    ///
    /// # Errors
    ///
    /// None today: a failed `accept` (out of file descriptors and the like) is logged and
    /// retried after a short pause, so the listener never stops accepting. The `Result` is kept
    /// for embedders matching on it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // Aborted when serving ends or this future is dropped.
        let _refresher =
            AbortOnDrop(tokio::spawn(self.state.limits.clone().refresh_quotas(
                self.state.db.clone(),
                self.state.config.quota_refresh,
            )));
        // Signing-key rotations reach this replica on the same cadence (see `crate::tokens`).
        let _keys =
            AbortOnDrop(tokio::spawn(self.state.tokens.clone().refresh_every(
                self.state.db.clone(),
                self.state.config.quota_refresh,
            )));
        self.serve_until(shutdown).await
    }

    async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let config = self.state.config.connections.clone();
        let (stop, stopping) = watch::channel(false);
        let metrics = self.metrics.map(|(tcp, addr)| {
            // Logged before "l2c-server listening", which tools wait for.
            tracing::info!(address = %addr, "metrics endpoint listening (GET /metrics)");
            connections::serve(
                Endpoint {
                    tcp,
                    tls: None,
                    router: crate::metrics_app(self.state.clone()),
                    max_connections: connections::METRICS_MAX_CONNECTIONS,
                    name: "metrics",
                    // Scrapes are not counted with the public listener's connections.
                    metrics: std::sync::Arc::default(),
                    send_stall_timeout: config.idle_timeout,
                },
                config.clone(),
                stopping.clone(),
            )
        });
        tracing::info!(
            address = %self.local_addr,
            tls = self.acceptor.is_some(),
            max_connections = self.max_connections,
            "l2c-server listening"
        );
        let dispatcher = self.dispatcher.map(crate::dispatch::Dispatcher::spawn);
        let request_log = self
            .request_log
            .map(crate::observe::request_log::RequestLogWriter::spawn);
        let public = connections::serve(
            Endpoint {
                tcp: self.tcp,
                tls: self.acceptor,
                router: self.app,
                max_connections: self.max_connections,
                name: "public",
                metrics: std::sync::Arc::clone(self.state.metrics.connections()),
                send_stall_timeout: self.state.config.export_stall_timeout,
            },
            config,
            stopping,
        );
        let metrics = async {
            if let Some(metrics) = metrics {
                metrics.await;
            }
        };
        let trigger = async move {
            shutdown.await;
            tracing::info!("shutting down: draining connections");
            let _ = stop.send(true);
        };
        tokio::join!(public, metrics, trigger);
        if let Some(d) = dispatcher {
            d.shutdown().await;
        }
        // After the last request: every record is queued, and written before the pool closes.
        if let Some(log) = request_log {
            log.shutdown().await;
        }
        tracing::info!("l2c-server stopped");
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM.
    ///
    /// # Errors
    ///
    /// None today: a failed `accept` (out of file descriptors and the like) is logged and
    /// retried after a short pause, so the listener never stops accepting. The `Result` is kept
    /// for embedders matching on it.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl From<StateError> for StartError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Tokens(e) => StartError::Tokens(e),
            StateError::Config(e) => StartError::Config(e),
            StateError::Store(e) => StartError::Store(e),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// `l2c-server serve`: everything from configuration to shutdown.
///
/// # Errors
///
/// [`StartError`] when the configuration, database, key or address is unusable.
pub async fn serve(config: Config) -> Result<(), StartError> {
    config.validate()?;
    if config.tls.is_none() && !config.trust_proxy_tls && !config.listen.ip().is_loopback() {
        tracing::warn!(
            "listening on a non-loopback address without TLS: the token endpoint refuses \
             plain-HTTP requests from other hosts; pass --tls-cert/--tls-key, or \
             --trust-proxy-tls when a TLS terminator sits in front"
        );
    }
    let db = Db::connect_with_acquire_timeout(&config.database_url, config.db_acquire_timeout)
        .await?
        .with_data_keys(config.data_keys.clone());
    crate::usecases::data_keys::startup(&db).await?;
    let seeded = db.showroom().seed_demo_if_empty().await?;
    if seeded > 0 {
        tracing::info!(items = seeded, "seeded the demo showroom catalogue");
    }
    let demo = config.demo_client;
    let listen = config.listen;
    let state = AppState::new(config, db.clone()).await?;
    if state.config.redis_url.is_some() {
        state.limits.connect().await.map_err(StartError::Redis)?;
        tracing::info!(
            prefix = %state.config.redis_prefix,
            "rate limits, export cap and idempotency records in Redis"
        );
    }
    // The state's handle also owns the exports' pool (`--export-db-connections`).
    let state_db = state.db.clone();
    let server = Server::bind(state).await?;
    if demo {
        create_demo_client(&db, listen, &server.base_url()).await?;
    }
    server.run().await?;
    state_db.close().await;
    Ok(())
}

/// On a database without clients, when the server is configured to listen on a loopback
/// address (`listen`), creates `demo` with every scope and prints its credentials and a
/// ready-to-paste curl to stdout. Returns whether it did.
///
/// The demo client reads only the customers of its own leads and orders, like any client: the
/// all-customers grant is an operator's decision (`l2c-server client grant --all-customers`).
/// On any other listen address (`0.0.0.0`, a LAN or public IP) a client with well-known
/// scopes and a secret printed to a log must not appear by itself, so none is created and a
/// warning says how to create a client instead.
///
/// # Errors
///
/// [`StoreError`] on a database failure.
pub async fn create_demo_client(
    db: &Db,
    listen: SocketAddr,
    base_url: &str,
) -> Result<bool, StoreError> {
    if !listen.ip().is_loopback() {
        if db.clients().count().await? == 0 {
            tracing::warn!(
                address = %listen,
                "no demo client created: the server does not listen on a loopback address; \
                 create clients with `l2c-server client create`"
            );
        }
        return Ok(false);
    }
    if db.clients().count().await? > 0 {
        return Ok(false);
    }
    let (client, secret) = db
        .clients()
        .create(&NewClient::new("demo", Scopes::all()))
        .await?;
    let id = client.id.as_str();
    let secret = secret.expose();
    let insecure = if base_url.starts_with("https") {
        " -k"
    } else {
        ""
    };
    println!(
        "\n\
         ==================================================================\n \
         l2c demo client created (the secret is shown only this once)\n\n   \
         client_id:     {id}\n   \
         client_secret: {secret}\n   \
         scopes:        {scopes}\n\n \
         Get an access token:\n\n   \
         curl -s{insecure} -X POST {base_url}/api/oauth/token \\\n     \
         -H 'Content-Type: application/json' \\\n     \
         -d '{{\"grant_type\":\"client_credentials\",\"client_id\":\"{id}\",\"client_secret\":\"{secret}\"}}'\n\
         ==================================================================\n",
        scopes = Scopes::all(),
    );
    Ok(true)
}
