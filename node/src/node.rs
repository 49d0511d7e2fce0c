//! Setting up a home directory, and running a node.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledgerwire_p2p::{Switch, SwitchBuilder};
use ledgerwire_reactors::accounts::store::{AccountSource, Store, StoreError, StoredAccount};
use ledgerwire_reactors::discovery::{self, DiscoveryConfig, DiscoveryHandle};
use ledgerwire_reactors::forwarding::core::ForwarderConfig;
use ledgerwire_reactors::forwarding::{self, Connector, ConnectorConfig};
use ledgerwire_reactors::ilp::Address;
use ledgerwire_reactors::ping::{self, PingConfig, PingHandle};
use ledgerwire_reactors::routing::{self, Routing, core::RouterConfig};
use ledgerwire_types::{NodeKey, NodeKeyError, WireProfile, atomic_file};
use slog::{Logger, info};
use tokio::task::JoinHandle;

use crate::admin::{self, AdminState};
use crate::config::{CONFIG_FILE, ConfigError, NodeConfig, template};

/// Why `init` or `start` failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The node key could not be read or written.
    #[error("{0}{hint}", hint = key_hint(.0))]
    Key(#[from] NodeKeyError),
    /// The home directory already has a configuration.
    #[error("{0} exists already; remove it to start over")]
    AlreadyInitialised(PathBuf),
    /// The admin token file is missing or unreadable.
    #[error("cannot read the admin token {path}: {source}")]
    TokenRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The admin token is too short to be a secret.
    #[error("the admin token in {0} is shorter than 16 characters")]
    TokenTooShort(PathBuf),
    /// The admin address a running node records (for `admin.laddr` with port 0) is missing or malformed.
    #[error(
        "cannot read the admin address {path}: {reason} (admin.laddr uses port 0 and no running node recorded its address)"
    )]
    AdminAddress {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The switch could not be built or started.
    #[error("p2p: {0}")]
    Switch(#[from] ledgerwire_p2p::BuildError),
    /// The ILP database could not be opened or synchronised with the config.
    #[error("ilp.db_file: {0}")]
    Store(#[from] StoreError),
    /// The ILP-over-HTTP listener could not listen.
    #[error(
        "ilp.http_laddr: cannot listen on {addr}: {source} (change ilp.http_laddr, or set it to \"\" to turn it off)"
    )]
    IlpHttp {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The p2p listener could not listen.
    #[error("p2p.laddr: cannot listen on {addr}: {source} (change p2p.laddr)")]
    P2pListen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Another node runs on this home.
    #[error("another ledgerwire node is running on {0} (it holds the lock file); stop it first, or use another --home")]
    HomeInUse(PathBuf),
    /// No node runs on this home (for commands that talk to the running node).
    #[error("no ledgerwire node is running on {0}: start it with `ledgerwire start --home {0}`")]
    NotRunning(PathBuf),
    /// The metrics listener could not listen.
    #[error(
        "metrics.laddr: cannot listen on {addr}: {source} (change metrics.laddr, or set it to \"\" to turn it off)"
    )]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A local network could not be set up (localnet, testnet).
    #[error("{0}")]
    Setup(String),
    /// The admin API could not listen.
    #[error("admin.laddr: cannot serve the admin API on {addr}: {source} (change admin.laddr)")]
    Admin {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What `init` created.
#[derive(Debug)]
pub struct Initialised {
    /// The config file.
    pub config_file: PathBuf,
    /// The node key file.
    pub node_key_file: PathBuf,
    /// The admin token file.
    pub token_file: PathBuf,
    /// The node's ID.
    pub id: String,
}

fn key_hint(e: &NodeKeyError) -> &'static str {
    match e {
        NodeKeyError::Missing { .. } => {
            " (a new home: `ledgerwire init --home <dir>`; a home that lost its key: `ledgerwire start --init --home <dir>` creates a new identity)"
        }
        _ => "",
    }
}

/// Writes `file` as the home's config.toml (validated first), replacing what is there.
pub fn write_config(home: &Path, file: &crate::config::ConfigFile) -> Result<(), NodeError> {
    let config_file = home.join(CONFIG_FILE);
    let text = file.render();
    crate::config::ConfigFile::parse(&text, &config_file)?.resolve(home)?;
    atomic_file::write_atomic(&config_file, text.as_bytes(), 0o644)
        .map_err(|source| NodeError::Write { path: config_file.clone(), source })
}

/// Creates the node key (kept if one exists), an admin token and, last, `home/config/config.toml`: a home is
/// initialised once its config file exists, so an init killed part-way leaves a home that `init` completes.
pub fn init(home: &Path, profile: WireProfile, network: &str, moniker: &str) -> Result<Initialised, NodeError> {
    let config_file = home.join(CONFIG_FILE);
    if config_file.exists() {
        return Err(NodeError::AlreadyInitialised(config_file));
    }
    let text = template(profile, network, moniker);
    // Validate what we are about to write (network and moniker come from the command line).
    let config = crate::config::ConfigFile::parse(&text, &config_file)?.resolve(home)?;
    let key = NodeKey::load_or_generate(&config.node_key_file, profile)?;
    let token_file = config.admin.token_file;
    write_admin_token(&token_file)?;
    let dir = config_file.parent().unwrap_or(home);
    std::fs::create_dir_all(dir).map_err(|source| NodeError::Write { path: dir.to_owned(), source })?;
    atomic_file::write_atomic(&config_file, text.as_bytes(), 0o644)
        .map_err(|source| NodeError::Write { path: config_file.clone(), source })?;
    Ok(Initialised {
        config_file,
        node_key_file: config.node_key_file,
        token_file,
        id: key.node_id(profile).to_string(),
    })
}

/// Writes a new random admin token to `token_file` (0600, atomically).
pub fn write_admin_token(token_file: &Path) -> Result<(), NodeError> {
    let write_err = |source| NodeError::Write { path: token_file.to_owned(), source };
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| write_err(std::io::Error::other(e)))?;
    if let Some(dir) = token_file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NodeError::Write { path: dir.to_owned(), source })?;
    }
    atomic_file::write_atomic(token_file, format!("{}\n", hex::encode(token)).as_bytes(), 0o600).map_err(write_err)
}

/// The lock a running node holds on its home.
pub const LOCK_FILE: &str = "data/node.lock";

/// Takes the home's lock (released when the file is dropped, or the process ends however it ends).
fn lock_home(home: &Path) -> Result<std::fs::File, NodeError> {
    let path = home.join(LOCK_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NodeError::Write { path: dir.to_owned(), source })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| NodeError::Write { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::HomeInUse(home.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(NodeError::Write { path, source }),
    }
}

/// Whether a node runs on `home` (holds its lock).
pub fn is_running(home: &Path) -> bool {
    matches!(lock_home(home), Err(NodeError::HomeInUse(_)))
}

/// Warns when a secret file can be read by others than its owner.
fn warn_if_readable(path: &Path, logger: &Logger) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            slog::warn!(logger, "a secret file can be read by other users; chmod 600 it";
                "file" => %path.display(), "mode" => format!("{:o}", meta.permissions().mode() & 0o777));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, logger);
}

/// Where a running node records the admin API's bound address (useful when `admin.laddr` has port 0).
pub const ADMIN_ADDR_FILE: &str = "data/admin.addr";

/// The admin API address of the node at `config.home`: the configured one, or the one a running node recorded if
/// the configured port is 0.
pub fn admin_address(config: &NodeConfig) -> Result<std::net::SocketAddr, NodeError> {
    // Only the node that owns the home gets the token: no lock held, no node (a stale address file from a killed
    // node may name a port someone else listens on now).
    if !is_running(&config.home) {
        return Err(NodeError::NotRunning(config.home.clone()));
    }
    if config.admin.laddr.port() != 0 {
        return Ok(config.admin.laddr);
    }
    let path = config.home.join(ADMIN_ADDR_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| NodeError::AdminAddress { path: path.clone(), reason: e.to_string() })?;
    text.trim().parse().map_err(|_| NodeError::AdminAddress { path, reason: "not an ip:port".into() })
}

/// Reads the admin token.
pub fn read_token(path: &Path) -> Result<String, NodeError> {
    let token = std::fs::read_to_string(path)
        .map_err(|source| NodeError::TokenRead { path: path.to_owned(), source })?
        .trim()
        .to_owned();
    if token.len() < 16 {
        return Err(NodeError::TokenTooShort(path.to_owned()));
    }
    Ok(token)
}

/// A running node.
#[derive(Debug)]
pub struct RunningNode {
    /// The switch.
    pub switch: Switch,
    /// Ping measurements.
    pub pings: PingHandle,
    /// Peer discovery, if `pex` is on.
    pub discovery: Option<DiscoveryHandle>,
    /// Where the admin API listens.
    pub admin_addr: std::net::SocketAddr,
    /// The ILP connector.
    pub connector: Connector,
    /// Route exchange, if on.
    pub routing: Option<Routing>,
    /// Where the ILP-over-HTTP listener listens, if on.
    pub ilp_http_addr: Option<std::net::SocketAddr>,
    ilp_http_stop: tokio::sync::watch::Sender<bool>,
    ilp_http_task: Option<JoinHandle<()>>,
    store: Store,
    admin_stop: tokio::sync::watch::Sender<bool>,
    admin_task: JoinHandle<()>,
    metrics_task: Option<JoinHandle<()>>,
    /// Where `GET /metrics` listens, if on.
    pub metrics_addr: Option<std::net::SocketAddr>,
    admin_addr_file: PathBuf,
    logger: Logger,
    // Held while the node runs: a second node on the same home is refused, and the CLI knows a node is there.
    _lock: std::fs::File,
}

/// Starts the switch (with the ping and discovery reactors) and the admin API.
pub async fn start(config: &NodeConfig, logger: Logger) -> Result<RunningNode, NodeError> {
    let lock = lock_home(&config.home)?;
    let key = Arc::new(NodeKey::load(&config.node_key_file)?);
    let node_id = key.node_id(config.profile);
    config.check_own_id(node_id)?;
    let token = read_token(&config.admin.token_file)?;
    let p2p = &config.p2p;
    let mut builder = SwitchBuilder::new(key, config.profile, config.switch_config(), logger.clone());
    let pings = ping::register(&mut builder, PingConfig::default(), logger.clone())?;
    let discovery = if p2p.pex {
        let mut d = DiscoveryConfig::new(config.profile, p2p.max_outbound);
        d.interval = p2p.discovery_interval;
        d.seeds = p2p.seeds.clone();
        d.seed_mode = p2p.seed_mode;
        d.private = p2p.private_peer_ids.iter().copied().collect();
        d.persistent = p2p.persistent_peers.iter().map(|a| a.id()).collect();
        d.persistent_addresses = p2p.persistent_peers.clone();
        d.book_file = Some(p2p.addr_book_file.clone());
        Some(discovery::register(&mut builder, d, logger.clone())?)
    } else {
        None
    };
    // From a Prepare's arrival to its answer: 100 µs to about 15 s.
    let latency = prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.5, 14),
    );
    let (connector, store) = start_connector(config, node_id, &mut builder, &logger, latency.clone()).await?;
    let routing = match config.ilp.route_exchange {
        Some(settings) => {
            let mut rc = RouterConfig::new(routing::random_secret(), routing::random_table_id());
            rc.broadcast_interval = settings.interval;
            rc.route_expiry = settings.expiry;
            rc.debounce = settings.debounce;
            Some(routing::register(
                &mut builder,
                rc,
                connector.clone(),
                logger.new(slog::o!("module" => "ilp-routing")),
            )?)
        }
        None => None,
    };
    let (ilp_http_stop, ilp_http_stopped) = tokio::sync::watch::channel(false);
    let (ilp_http_addr, ilp_http_listener) = match config.ilp.http_laddr {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|source| NodeError::IlpHttp { addr, source })?;
            let bound = listener.local_addr().map_err(|source| NodeError::IlpHttp { addr, source })?;
            (Some(bound), Some(listener))
        }
        None => (None, None),
    };
    let admin_laddr = config.admin.laddr;
    let admin_listener = tokio::net::TcpListener::bind(admin_laddr)
        .await
        .map_err(|source| NodeError::Admin { addr: admin_laddr, source })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| NodeError::Admin { addr: admin_laddr, source })?;
    let switch = builder.start().await.map_err(|e| match e {
        ledgerwire_p2p::BuildError::Listen { addr, source } => NodeError::P2pListen { addr, source },
        e => e.into(),
    })?;
    let admin_addr_file = config.home.join(ADMIN_ADDR_FILE);
    warn_if_readable(&config.node_key_file, &logger);
    warn_if_readable(&config.admin.token_file, &logger);
    let record = |path: &Path| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        atomic_file::write_atomic(path, format!("{admin_addr}\n").as_bytes(), 0o644)
    };
    record(&admin_addr_file).map_err(|source| NodeError::Write { path: admin_addr_file.clone(), source })?;
    let ilp_http_task = ilp_http_listener.map(|listener| {
        tokio::spawn(ledgerwire_reactors::ilp_over_http::serve(
            listener,
            config.ilp.http_limits,
            connector.credentials(),
            connector.address(),
            connector.clone(),
            ilp_http_stopped,
            logger.new(slog::o!("module" => "ilp-http")),
        ))
    });
    let state = AdminState {
        connector: connector.clone(),
        routing: routing.clone(),
        switch: switch.clone(),
        pings: pings.clone(),
        discovery: discovery.clone(),
        token: token.into(),
        profile: config.profile,
    };
    let (admin_stop, stopped) = tokio::sync::watch::channel(false);
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        state,
        config.admin.limits,
        stopped,
        logger.new(slog::o!("module" => "admin")),
    ));
    let (metrics_addr, metrics_task) = match config.metrics.laddr {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                slog::warn!(logger, "metrics are served without a token on a non-loopback address; firewall it";
                    "metrics.laddr" => %addr);
            }
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|source| NodeError::Metrics { addr, source })?;
            let bound = listener.local_addr().map_err(|source| NodeError::Metrics { addr, source })?;
            let state =
                crate::metrics::start(switch.clone(), connector.clone(), routing.clone(), discovery.clone(), latency);
            let app = crate::metrics::router(state);
            let task = tokio::spawn(ledgerwire_reactors::ilp_over_http::serve_bounded(
                listener,
                ledgerwire_reactors::ilp_over_http::HttpLimits { max_connections: 16, ..Default::default() },
                move |_peer| hyper_util::service::TowerToHyperService::new(app.clone()),
                admin_stop.subscribe(),
                logger.new(slog::o!("module" => "metrics")),
                "metrics",
            ));
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    info!(logger, "node started";
        "metrics" => metrics_addr.map_or_else(|| "off".to_owned(), |a| format!("http://{a}/metrics")),
        "id" => %switch.id(), "profile" => %config.profile, "network" => &config.network,
        "p2p" => switch.listen_addr().map(|a| a.to_string()), "admin" => admin::describe(admin_addr),
        "persistent_peers" => p2p.persistent_peers.len(),
        "ilp_address" => %connector.address().borrow().clone(),
        "ilp_http" => ilp_http_addr.map_or_else(|| "off".to_owned(), |a| a.to_string()));
    Ok(RunningNode {
        switch,
        pings,
        discovery,
        admin_addr,
        connector,
        routing,
        ilp_http_addr,
        ilp_http_stop,
        ilp_http_task,
        store,
        admin_stop,
        admin_task,
        metrics_task,
        metrics_addr,
        admin_addr_file,
        logger,
        _lock: lock,
    })
}

/// Opens the ILP database, makes its config accounts follow config.toml, and registers the connector.
async fn start_connector(
    config: &NodeConfig,
    node_id: ledgerwire_types::NodeId,
    builder: &mut SwitchBuilder,
    logger: &Logger,
    latency: prometheus_client::metrics::histogram::Histogram,
) -> Result<(Connector, Store), NodeError> {
    let ilp = &config.ilp;
    if let Some(dir) = ilp.db_file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NodeError::Write { path: dir.to_owned(), source })?;
    }
    let store = Store::open(&ilp.db_file)?;
    let before = store.snapshot().await?;
    let in_config: std::collections::HashSet<&str> = ilp.accounts.iter().map(|a| a.id.as_str()).collect();
    for stored in &before.accounts {
        if stored.source == AccountSource::Config
            && !in_config.contains(stored.spec.id.as_str())
            && let Ok(id) = ledgerwire_reactors::accounts::AccountId::new(&stored.spec.id)
        {
            info!(logger, "ILP account removed from config.toml; removing it (its balance is kept)"; "account" => %id);
            store.delete_account(id).await?;
        }
    }
    for spec in &ilp.accounts {
        let stored = StoredAccount { spec: spec.clone(), source: AccountSource::Config };
        if !before.accounts.contains(&stored) {
            store.put_account(stored).await?;
        }
    }
    let snapshot = store.snapshot().await?;
    // No address configured: a parent (if any) gives us one by ILDCP; until then, and without a parent, we are
    // "test." followed by our node ID.
    let fallback = Address::parse(&format!("test.{node_id}")).map_err(|e| {
        NodeError::Config(crate::config::invalid("ilp.address", format!("set it: the default does not fit ({e})")))
    })?;
    let has_parent =
        snapshot.accounts.iter().any(|a| a.spec.relation == ledgerwire_reactors::accounts::Relation::Parent);
    let (address, inherit_address) = match &ilp.address {
        Some(a) => (a.clone(), false),
        None => (fallback, has_parent),
    };
    let mut forwarder = ForwarderConfig::new(address);
    forwarder.min_message_window_ms = ilp.min_message_window_ms;
    forwarder.max_hold_time_ms = ilp.max_hold_time_ms;
    forwarder.max_in_flight_per_account = ilp.max_in_flight_per_account;
    forwarder.rates = ilp.rates.clone();
    let connector = forwarding::register(
        builder,
        ConnectorConfig { forwarder, profile: config.profile, inherit_address, latency: Some(latency) },
        store.clone(),
        snapshot.accounts,
        snapshot.balances,
        ilp.routes.clone(),
        logger.new(slog::o!("module" => "ilp")),
    )?;
    Ok((connector, store))
}

impl RunningNode {
    /// Stops the admin API and the switch, closing every connection, and waits for both.
    pub async fn stop(self) {
        let _ = self.admin_stop.send(true);
        let _ = self.ilp_http_stop.send(true);
        self.switch.stop().await;
        if let Some(task) = self.ilp_http_task {
            let _ = task.await;
        }
        // Balance changes sent before this point are on disk when close returns.
        self.store.close().await;
        // Discovery writes the address book a last time once the switch has stopped.
        if let Some(d) = &self.discovery {
            d.stopped().await;
        }
        // The admin server finishes once open event streams notice the switch is gone.
        let _ = self.admin_task.await;
        if let Some(task) = self.metrics_task {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.admin_addr_file);
        info!(self.logger, "node stopped");
    }
}
