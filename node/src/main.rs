//! `ledgerwire`: run and operate a ledgerwire node.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ledgerwire_node::config::{LogFormat, NodeConfig};
use ledgerwire_node::{client, logging, node};
use ledgerwire_types::{NodeKey, WireProfile};

/// mimalloc: the forwarding path allocates a few small buffers per packet, and the system allocator was a tenth
/// of its CPU time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "ledgerwire", version, about = "A peer-to-peer node for Interledger connector networks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a home directory: config/config.toml, the node key and an admin token.
    Init {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Wire profile: tm2 or cometbft.
        #[arg(long, default_value = "tm2")]
        profile: WireProfile,
        /// Network (chain) ID.
        #[arg(long, default_value = "ledgerwire-devnet")]
        network: String,
        /// Human-readable node name.
        #[arg(long, default_value = "ledgerwire-node")]
        moniker: String,
    },
    /// Print the node's ID.
    ShowNodeId {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
    },
    /// Run the node until SIGINT or SIGTERM.
    Start {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// If the home directory has no config yet, initialise it with the defaults first.
        #[arg(long)]
        init: bool,
        /// Log format (overrides log.format in the config).
        #[arg(long)]
        log_format: Option<Format>,
    },
    /// List connected peers (asks the running node's admin API).
    Peers {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the running node's address book.
    Addrbook {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a local connector network in this process: N nodes find each other through a seed, exchange routes,
    /// and pay each other continuously, with a live view; Ctrl-C (or --duration) stops it and prints a summary.
    Localnet {
        /// How many nodes (2 to 64).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Wire profile: tm2 or cometbft.
        #[arg(long, default_value = "tm2")]
        profile: WireProfile,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Where to put the nodes' homes (default: a temporary folder, removed at the end).
        #[arg(long)]
        home: Option<PathBuf>,
        /// Payments per second each node starts.
        #[arg(long, default_value_t = 200)]
        rate: u32,
    },
    /// Write N ready-to-start homes wired to each other (persistent peers, ILP accounts, an app account each),
    /// for separate processes: `ledgerwire start --home DIR/node0`, …
    Testnet {
        /// How many nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Where to write the homes (node0, node1, …) and testnet.json.
        #[arg(long)]
        output: PathBuf,
        /// Wire profile: tm2 or cometbft.
        #[arg(long, default_value = "tm2")]
        profile: WireProfile,
        /// Node i uses loopback ports base + 10·i (p2p), +2 (admin), +3 (ILP-over-HTTP), +4 (its app).
        #[arg(long, default_value_t = 26656)]
        base_port: u16,
    },
    /// Show the running node's ILP routing table (prefix, next hop, path, source, age).
    Routes {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Show route exchange per account instead (epochs, updates and controls sent and received).
        #[arg(long)]
        peers: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage the running node's ILP accounts (list, add, remove, balance, settlements, settle).
    Accounts {
        /// The node's home directory.
        #[arg(long, global = true, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        #[command(subcommand)]
        action: AccountsAction,
    },
    /// Print the version of this binary.
    Version,
    /// Show the running node: ID, profile, network, listen address, ILP address, peers.
    Status {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running node to dial a peer (`id@host:port`).
    Dial {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// The peer's address.
        address: String,
        /// Keep redialing it (until restart).
        #[arg(long)]
        persistent: bool,
    },
    /// Ask the running node to disconnect a peer and not redial it until restart (if the peer dials us again it is
    /// admitted: `ban` refuses it).
    Disconnect {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// The peer's ID.
        id: String,
    },
    /// Ask the running node to disconnect a peer and refuse it (both ways) for a while.
    Ban {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// The peer's ID.
        id: String,
        /// How long: `30m`, `1h`, `24h`, …
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (listed by `ledgerwire bans` and logged).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ask the running node to lift a ban (a persistent peer is dialed at once).
    Unban {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// The peer's ID.
        id: String,
    },
    /// Show the running node's bans: peer, time left, by operator or automatic, reason.
    Bans {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Configuration tools: `ledgerwire config check`.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Forget every address discovery learned (the node must be stopped); configured peers stay.
    ResetAddrbook {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
    },
    /// Follow the running node's events, one JSON object per line.
    Events {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ConfigAction {
    /// Check the home's configuration without starting (exit status 1 and one line naming `section.key` if wrong).
    Check {
        /// The node's home directory.
        #[arg(long, env = "LEDGERWIRE_HOME", default_value_os_t = default_home(), hide_env_values = true)]
        home: PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
enum AccountsAction {
    /// Every account with balances and counters.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add or replace an account from a JSON file (the [[ilp.accounts]] fields).
    Add {
        /// The account as JSON.
        file: PathBuf,
    },
    /// Remove an account made through the API (its balance is kept).
    Remove {
        /// The account ID.
        id: String,
    },
    /// An account's balance.
    Balance {
        /// The account ID.
        id: String,
    },
    /// An account's settlement records.
    Settlements {
        /// The account ID.
        id: String,
    },
    /// Record a settlement made outside the network.
    Settle {
        /// The account ID.
        id: String,
        /// The amount, in the account's units.
        amount: String,
        /// `outgoing` (we paid them) or `incoming` (they paid us).
        direction: String,
        /// A note (at most 1024 bytes).
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The admin address and token of the node running on `home` (only a node holding the home's lock is asked).
fn admin_of(home: &std::path::Path) -> Result<(std::net::SocketAddr, String), Box<dyn std::error::Error>> {
    let config = NodeConfig::load(home)?;
    let token = node::read_token(&config.admin.token_file)?;
    Ok((node::admin_address(&config)?, token))
}

/// `~/.ledgerwire` (or `./.ledgerwire` without a home directory).
fn default_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".ledgerwire")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Init { home, profile, network, moniker } => {
            let done = node::init(&home, profile, &network, &moniker)?;
            println!("node ID     {}", done.id);
            println!("config      {}", done.config_file.display());
            println!("node key    {}", done.node_key_file.display());
            println!("admin token {}", done.token_file.display());
        }
        Command::ShowNodeId { home } => {
            let config = NodeConfig::load(&home)?;
            let key = NodeKey::load(&config.node_key_file).map_err(node::NodeError::from)?;
            println!("{}", key.node_id(config.profile));
        }
        Command::Start { home, init, log_format } => {
            let stop = StopSignal::install()?;
            if init && !home.join(ledgerwire_node::config::CONFIG_FILE).exists() {
                let done = node::init(&home, WireProfile::Tm2, "ledgerwire-devnet", "ledgerwire-node")?;
                eprintln!("initialised {} (node ID {})", home.display(), done.id);
            }
            let config = NodeConfig::load(&home)?;
            if init && !config.node_key_file.exists() {
                let key =
                    NodeKey::load_or_generate(&config.node_key_file, config.profile).map_err(node::NodeError::from)?;
                eprintln!(
                    "created a node key in {} (node ID {})",
                    config.node_key_file.display(),
                    key.node_id(config.profile)
                );
            }
            if init && !config.admin.token_file.exists() {
                node::write_admin_token(&config.admin.token_file)?;
                eprintln!("created an admin token in {}", config.admin.token_file.display());
            }
            let format = match log_format {
                Some(Format::Json) => LogFormat::Json,
                Some(Format::Text) => LogFormat::Text,
                None => config.log.format,
            };
            let (logger, _guard) = logging::logger(format, config.log.level);
            let running = node::start(&config, logger.clone()).await?;
            stop.wait().await?;
            slog::info!(logger, "shutting down");
            running.stop().await;
        }
        Command::Peers { home, json } => {
            let (admin, token) = admin_of(&home)?;
            let peers = client::get_json(admin, &token, "/peers").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&peers)?);
            } else {
                print_peers(&peers);
            }
        }
        Command::Addrbook { home, json } => {
            let (admin, token) = admin_of(&home)?;
            let book = client::get_json(admin, &token, "/addrbook").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&book)?);
            } else {
                print_book(&book);
            }
        }
        Command::Localnet { nodes, profile, duration, home, rate } => {
            use std::io::{IsTerminal, Write};
            if !(2..=64).contains(&nodes) {
                return Err(format!("--nodes: {nodes} is out of range (2 to 64)").into());
            }
            if rate == 0 {
                return Err("--rate: at least 1 payment per second".into());
            }
            let options = ledgerwire_node::localnet::LocalnetOptions { nodes, profile, home, rate };
            let stop = async move {
                match duration {
                    Some(s) => tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(s)) => {}
                        _ = tokio::signal::ctrl_c() => {}
                    },
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            let terminal = std::io::stdout().is_terminal();
            eprintln!("starting {nodes} nodes…");
            let summary = ledgerwire_node::localnet::run(options, stop, |s| {
                let mut out = std::io::stdout().lock();
                if terminal {
                    // Clear the screen and draw the table again.
                    let _ = write!(out, "\x1b[2J\x1b[H{}\n(Ctrl-C stops)\n", ledgerwire_node::localnet::render(s));
                } else {
                    let fulfilled: u64 = s.nodes.iter().map(|n| n.fulfilled).sum();
                    let rejected: u64 = s.nodes.iter().map(|n| n.rejected.values().sum::<u64>()).sum();
                    let rate: f64 = s.nodes.iter().map(|n| n.per_second).sum();
                    let routes: usize = s.nodes.iter().map(|n| n.routes).sum();
                    let peers: usize = s.nodes.iter().map(|n| n.peers).sum();
                    let mut codes = std::collections::BTreeMap::<&str, u64>::new();
                    for n in &s.nodes {
                        for (c, k) in &n.rejected {
                            *codes.entry(c).or_default() += k;
                        }
                    }
                    let codes: Vec<String> = codes.iter().map(|(c, k)| format!("{c}:{k}")).collect();
                    let _ = writeln!(
                        out,
                        "t={:.0}s nodes={} peers={peers} routes={routes} fulfilled={fulfilled} rejected={rejected}{} per_second={rate:.0}",
                        s.elapsed_s,
                        s.nodes.len(),
                        if codes.is_empty() { String::new() } else { format!(" ({})", codes.join(" ")) }
                    );
                }
                let _ = out.flush();
            })
            .await?;
            println!("{}", ledgerwire_node::localnet::render_summary(&summary));
            if summary.lost > 0 {
                return Err(format!("{} payments got no answer", summary.lost).into());
            }
        }
        Command::Testnet { nodes, output, profile, base_port } => {
            if !(1..=64).contains(&nodes) {
                return Err(format!("--nodes: {nodes} is out of range (1 to 64)").into());
            }
            let list = ledgerwire_node::testnet::generate(&output, nodes, profile, base_port)?;
            for n in &list {
                println!(
                    "{:<8} {}  p2p {}  admin {}  ilp {}  ({})",
                    n.name,
                    n.id,
                    n.p2p,
                    n.admin,
                    n.ilp_address,
                    n.home.display()
                );
            }
            println!("start each with: ledgerwire start --home {}/nodeN", output.display());
            println!("ports, app URLs and tokens: {}", output.join("testnet.json").display());
        }
        Command::Routes { home, peers, json } => {
            let (admin, token) = admin_of(&home)?;
            let path = if peers { "/routes/peers" } else { "/routes" };
            let v = client::get_json(admin, &token, path).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if peers {
                print_route_peers(&v);
            } else {
                print_routes(&v);
            }
        }
        Command::Events { home } => {
            let (admin, token) = admin_of(&home)?;
            let result = client::follow_events(admin, &token, |mut e| {
                // Each line carries the time it was received (milliseconds since the Unix epoch).
                if let Some(obj) = e.as_object_mut() {
                    obj.insert("time_ms".into(), serde_json::json!(unix_ms()));
                }
                println!("{e}");
            })
            .await;
            let end = match &result {
                Ok(()) => "the node closed the stream (it stopped)".to_owned(),
                Err(e) => format!("the stream ended: {e}"),
            };
            println!("{}", serde_json::json!({ "event": "node_gone", "time_ms": unix_ms(), "reason": end }));
            result?;
        }
        Command::Version => println!("ledgerwire {}", env!("CARGO_PKG_VERSION")),
        Command::Accounts { home, action } => {
            let (admin, token) = admin_of(&home)?;
            let addr = admin;
            let v = match action {
                AccountsAction::List { json } => {
                    let v = client::get_json(addr, &token, "/accounts").await?;
                    if !json {
                        print_accounts(&v);
                        return Ok(());
                    }
                    v
                }
                AccountsAction::Add { file } => {
                    let text =
                        std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    let body: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
                    client::post_json(addr, &token, "/accounts", &body).await?
                }
                AccountsAction::Remove { id } => client::delete_json(addr, &token, &format!("/accounts/{id}")).await?,
                AccountsAction::Balance { id } => {
                    client::get_json(addr, &token, &format!("/accounts/{id}/balance")).await?
                }
                AccountsAction::Settlements { id } => {
                    client::get_json(addr, &token, &format!("/accounts/{id}/settlements")).await?
                }
                AccountsAction::Settle { id, amount, direction, note } => {
                    let body = serde_json::json!({ "amount": amount, "direction": direction, "note": note });
                    client::post_json(addr, &token, &format!("/accounts/{id}/settlements"), &body).await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Status { home, json } => {
            let (admin, token) = admin_of(&home)?;
            let status = client::get_json(admin, &token, "/status").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                let info = &status["node_info"];
                for (k, v) in [
                    ("id", &status["id"]),
                    ("profile", &status["profile"]),
                    ("network", &info["network"]),
                    ("moniker", &info["moniker"]),
                    ("listen", &status["listen_address"]),
                    ("peers", &status["peers"]),
                    ("ilp address", &status["ilp_address"]),
                ] {
                    let v = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                    println!("{k:<12} {v}");
                }
            }
        }
        Command::Dial { home, address, persistent } => {
            let (admin, token) = admin_of(&home)?;
            let body = serde_json::json!({ "address": address, "persistent": persistent });
            let v = client::post_json(admin, &token, "/peers", &body).await?;
            println!("{v}");
        }
        Command::Disconnect { home, id } => {
            let (admin, token) = admin_of(&home)?;
            let v = client::delete_json(admin, &token, &format!("/peers/{id}")).await?;
            println!("{v}");
        }
        Command::Ban { home, id, duration, reason } => {
            let (admin, token) = admin_of(&home)?;
            let body = serde_json::json!({ "id": id, "duration": duration, "reason": reason });
            let v = client::post_json(admin, &token, "/bans", &body).await?;
            println!("{v}");
        }
        Command::Unban { home, id } => {
            let (admin, token) = admin_of(&home)?;
            let v = client::delete_json(admin, &token, &format!("/bans/{id}")).await?;
            println!("{v}");
        }
        Command::Bans { home, json } => {
            let (admin, token) = admin_of(&home)?;
            let bans = client::get_json(admin, &token, "/bans").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&bans)?);
            } else {
                let list = bans.as_array().map(Vec::as_slice).unwrap_or_default();
                for b in list {
                    let text = |k: &str| b[k].as_str().unwrap_or("?").to_owned();
                    let (id, by, reason) = (text("id"), text("by"), text("reason"));
                    println!("{id:<42} {:>10}s  {by:<9}  {reason}", b["remaining_secs"]);
                }
                println!("{} ban(s)", list.len());
            }
        }
        Command::Config { action: ConfigAction::Check { home } } => {
            let config = NodeConfig::load(&home)?;
            println!(
                "{}: ok ({} profile, network {})",
                home.join(ledgerwire_node::config::CONFIG_FILE).display(),
                config.profile,
                config.network
            );
        }
        Command::ResetAddrbook { home } => {
            let config = NodeConfig::load(&home)?;
            if node::is_running(&home) {
                return Err(format!("a node is running on {}: stop it first", home.display()).into());
            }
            match std::fs::remove_file(&config.p2p.addr_book_file) {
                Ok(()) => println!("removed {}", config.p2p.addr_book_file.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    println!("{} does not exist: nothing to reset", config.p2p.addr_book_file.display())
                }
                Err(e) => return Err(format!("cannot remove {}: {e}", config.p2p.addr_book_file.display()).into()),
            }
        }
    }
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn print_peers(peers: &serde_json::Value) {
    let list = peers.as_array().cloned().unwrap_or_default();
    println!(
        "{:<42} {:<16} {:<9} {:<10} {:<7} {:<22} {:>12} {:>12} {:>7}",
        "ID", "MONIKER", "DIRECTION", "PERSISTENT", "PRIVATE", "ADDRESS", "BYTES IN", "BYTES OUT", "RTT MS"
    );
    for p in &list {
        let s = |k: &str| match &p[k] {
            serde_json::Value::String(v) => v.clone(),
            other => other.to_string(),
        };
        let rtt = p["rtt_ms"].as_f64().map_or("-".to_owned(), |r| format!("{r:.1}"));
        let moniker: String = s("moniker").chars().take(16).collect();
        println!(
            "{:<42} {:<16} {:<9} {:<10} {:<7} {:<22} {:>12} {:>12} {:>7}",
            s("id"),
            moniker,
            s("direction"),
            s("persistent"),
            s("private"),
            s("address"),
            s("bytes_in"),
            s("bytes_out"),
            rtt
        );
    }
    println!("{} peer(s)", list.len());
}

fn print_book(book: &serde_json::Value) {
    let list = book.as_array().cloned().unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ago =
        |v: &serde_json::Value| v.as_u64().map_or("never".to_owned(), |t| format!("{}s ago", now.saturating_sub(t)));
    println!("{:<70} {:<14} {:>14} {:>14} {:>8}", "ADDRESS", "SOURCE", "LAST ATTEMPT", "LAST SUCCESS", "FAILURES");
    for e in &list {
        let source = e["source"].as_str().unwrap_or("");
        // "self": the peer announced this address itself (and we verified it); "config": from config.toml; a
        // node ID: learned from that peer.
        let source = match source {
            "self" => "self-announced",
            s if s.len() > 14 => "peer",
            s => s,
        };
        println!(
            "{:<70} {:<14} {:>14} {:>14} {:>8}",
            e["address"].as_str().unwrap_or(""),
            source,
            ago(&e["last_attempt"]),
            ago(&e["last_success"]),
            e["failures"]
        );
    }
    println!("{} address(es)", list.len());
}

fn print_accounts(accounts: &serde_json::Value) {
    let list = accounts.as_array().cloned().unwrap_or_default();
    println!(
        "{:<20} {:<8} {:<6} {:>5} {:<8} {:<6} {:>22} {:>10} {:>10}",
        "ID", "RELATION", "ASSET", "SCALE", "SOURCE", "LINK", "BALANCE", "IN", "OUT"
    );
    for a in &list {
        println!(
            "{:<20} {:<8} {:<6} {:>5} {:<8} {:<6} {:>22} {:>10} {:>10}",
            a["id"].as_str().unwrap_or(""),
            a["relation"].as_str().unwrap_or(""),
            a["asset_code"].as_str().unwrap_or(""),
            a["asset_scale"].to_string(),
            a["source"].as_str().unwrap_or(""),
            if a["link_up"].as_bool() == Some(true) { "up" } else { "down" },
            a["balance"]["balance"].as_str().map(str::to_owned).unwrap_or_else(|| a["balance"]["balance"].to_string()),
            a["stats"]["prepares_in"].to_string(),
            a["stats"]["prepares_out"].to_string(),
        );
    }
    println!("{} account(s)", list.len());
}

fn print_routes(routes: &serde_json::Value) {
    let list = routes.as_array().cloned().unwrap_or_default();
    println!("{:<40} {:<20} {:<11} {:>10}  PATH", "PREFIX", "NEXT HOP", "SOURCE", "AGE");
    for r in &list {
        let prefix = match r["prefix"].as_str() {
            Some("") | None => "(default)",
            Some(p) => p,
        };
        let age = r["age_ms"].as_u64().map_or("-".to_owned(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
        let path: Vec<&str> =
            r["path"].as_array().map(|p| p.iter().filter_map(|h| h.as_str()).collect()).unwrap_or_default();
        println!(
            "{:<40} {:<20} {:<11} {:>10}  {}",
            prefix,
            r["next_hop"].as_str().unwrap_or("(here)"),
            r["source"].as_str().unwrap_or(""),
            age,
            path.join(" > ")
        );
    }
    println!("{} route(s)", list.len());
}

fn print_route_peers(peers: &serde_json::Value) {
    let list = peers.as_array().cloned().unwrap_or_default();
    println!(
        "{:<20} {:<7} {:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "ACCOUNT",
        "LINKED",
        "SENDING",
        "SENT EP",
        "RECV EP",
        "LEARNED",
        "UPD OUT",
        "UPD IN",
        "REFUSED",
        "FAILED",
        "BYTES OUT"
    );
    for p in &list {
        println!(
            "{:<20} {:<7} {:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
            p["account"].as_str().unwrap_or(""),
            p["linked"].to_string(),
            p["sending"].to_string(),
            p["sent_epoch"].to_string(),
            p["received_epoch"].to_string(),
            p["routes_learned"].to_string(),
            p["updates_sent"].to_string(),
            p["updates_received"].to_string(),
            p["routes_refused"].to_string(),
            p["sends_failed"].to_string(),
            p["bytes_sent"].to_string()
        );
    }
    println!("{} account(s)", list.len());
}

/// SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is made, before the node starts: a signal that
/// arrives while it starts still stops it cleanly, rather than ending the process at once.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal { term: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    async fn wait(self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            let StopSignal { mut term, mut interrupt } = self;
            tokio::select! {
                _ = term.recv() => Ok(()),
                _ = interrupt.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    }
}
