//! Building a switch: register reactors, then start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ledgerwire_conn::mconnection::{ChannelDescriptor, ChannelId, ConfigError};
use ledgerwire_types::{NodeKey, WireProfile};
use slog::{Logger, info, o};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use super::actor::Actor;
use super::config::{SwitchConfig, SwitchConfigError};
use super::handle::{Command, Lifecycle, Running, Shared, Switch};
use crate::delivery::ReactorInbox;
use crate::events::{EVENT_BUFFER, SwitchEvent};
use crate::inbox::{self, Inbox};
use crate::node_info::{MAX_CHANNELS, MAX_NODE_INFO_SIZE, NodeInfo, NodeInfoError};
use crate::transport::Transport;

/// Why a switch could not be built or started. Each variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Two reactors claim the same channel.
    #[error("channel {channel:#04x} is claimed by reactors {first:?} and {second:?}")]
    ChannelTaken {
        /// The channel.
        channel: ChannelId,
        /// The first reactor.
        first: String,
        /// The second reactor.
        second: String,
    },
    /// More channels than a NodeInfo can list.
    #[error("{0} channels registered, at most 16 fit in NodeInfo")]
    TooManyChannels(usize),
    /// A reactor's channel descriptors or the connection settings are invalid.
    #[error("invalid channel or connection settings: {0}")]
    Connection(#[source] ConfigError),
    /// The switch settings are invalid.
    #[error("invalid switch settings: {0}")]
    Config(#[from] SwitchConfigError),
    /// Our own NodeInfo would be refused by peers (a moniker or network too long or not printable, say).
    #[error("our NodeInfo would be refused by peers: {0}")]
    NodeInfo(#[source] NodeInfoError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Builds a switch: register reactors, then start.
pub struct SwitchBuilder {
    key: Arc<NodeKey>,
    profile: WireProfile,
    config: SwitchConfig,
    logger: Logger,
    inboxes: Vec<ReactorInbox>,
    descriptors: Vec<ChannelDescriptor>,
    owner: HashMap<ChannelId, String>,
    handle: Switch,
    cmd_rx: mpsc::Receiver<Command>,
    events: broadcast::Sender<SwitchEvent>,
}

impl std::fmt::Debug for SwitchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchBuilder").field("id", &self.handle.id()).finish_non_exhaustive()
    }
}

impl SwitchBuilder {
    /// A builder for a switch with identity `key`, speaking `profile`. `logger` may be `None` (nothing is logged).
    pub fn new(
        key: Arc<NodeKey>,
        profile: WireProfile,
        config: SwitchConfig,
        logger: impl Into<Option<Logger>>,
    ) -> Self {
        let logger = logger.into().unwrap_or_else(|| Logger::root(slog::Discard, o!()));
        let (cmd, cmd_rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Shared::new(key.node_id(profile)));
        SwitchBuilder {
            key,
            profile,
            config,
            logger,
            inboxes: Vec::new(),
            descriptors: Vec::new(),
            owner: HashMap::new(),
            handle: Switch { cmd, events: events.downgrade(), shared },
            cmd_rx,
            events,
        }
    }

    /// The switch's handle (usable now; commands take effect once it has started).
    pub fn handle(&self) -> Switch {
        self.handle.clone()
    }

    /// The wire profile.
    pub fn profile(&self) -> WireProfile {
        self.profile
    }

    /// Claims `channels` for the reactor `name` and creates its inbox of `inbox_capacity` events.
    pub(crate) fn claim(
        &mut self,
        name: &str,
        channels: &[ChannelDescriptor],
        inbox_capacity: usize,
    ) -> Result<Inbox, BuildError> {
        for c in channels {
            if let Some(first) = self.owner.get(&c.id) {
                return Err(BuildError::ChannelTaken { channel: c.id, first: first.clone(), second: name.into() });
            }
        }
        for c in channels {
            self.owner.insert(c.id, name.into());
        }
        let (tx, rx) = inbox::inbox(inbox_capacity);
        self.descriptors.extend_from_slice(channels);
        self.inboxes.push(ReactorInbox { channels: channels.iter().map(|c| c.id).collect::<Vec<_>>().into(), tx });
        Ok(rx)
    }

    /// Checks the settings and our NodeInfo, binds the listener, starts accepting and dialing (persistent peers
    /// first), and returns the handle. If this fails, nothing runs, and every reactor sees its event stream end.
    pub async fn start(mut self) -> Result<Switch, BuildError> {
        if self.descriptors.len() > MAX_CHANNELS {
            return Err(BuildError::TooManyChannels(self.descriptors.len()));
        }
        self.config.validate(self.handle.id())?;
        self.config.connection.validate().map_err(BuildError::Connection)?;
        ChannelDescriptor::validate_set(&self.descriptors).map_err(BuildError::Connection)?;
        let channels: Vec<u8> = self.descriptors.iter().map(|d| d.id).collect();
        let listener = TcpListener::bind(self.config.listen_addr)
            .await
            .map_err(|source| BuildError::Listen { addr: self.config.listen_addr, source })?;
        let listen_addr =
            listener.local_addr().map_err(|source| BuildError::Listen { addr: self.config.listen_addr, source })?;
        let advertised = self.config.external_address.unwrap_or(listen_addr);
        let node_info = NodeInfo::ours(
            self.profile,
            self.handle.id(),
            advertised,
            &self.config.network,
            &self.config.moniker,
            channels,
            &self.config.software_version,
        )
        .with_required_versions(&self.config.advertise_versions);
        node_info.validate().map_err(BuildError::NodeInfo)?;
        let size = node_info.encoded_body_len();
        if size > MAX_NODE_INFO_SIZE {
            return Err(BuildError::NodeInfo(NodeInfoError::TooLarge(size as u64)));
        }
        let logger = self.logger.new(o!("node" => self.handle.id().to_string()));
        let transport =
            Arc::new(Transport::new(self.key.clone(), node_info.clone(), self.config.transport, logger.clone()));
        // The builder is consumed: what it held moves to the actor (placeholders stay behind for its drop).
        let cmd_rx = std::mem::replace(&mut self.cmd_rx, mpsc::channel(1).1);
        let events = std::mem::replace(&mut self.events, broadcast::channel(1).0);
        let shared = self.handle.shared.clone();
        let _ = shared.running.set(Running { node_info, listen_addr });
        shared.lifecycle.send_replace(Lifecycle::Running);
        info!(logger, "switch started"; "listen" => %listen_addr, "profile" => %self.profile);
        let actor = Actor::new(
            shared,
            transport,
            self.config.clone(),
            std::mem::take(&mut self.inboxes),
            std::mem::take(&mut self.descriptors),
            cmd_rx,
            events,
            listener,
            logger,
        );
        tokio::spawn(actor.run());
        Ok(self.handle.clone())
    }
}

impl Drop for SwitchBuilder {
    fn drop(&mut self) {
        // A builder dropped without starting (or whose start failed): tell everyone waiting that it never will.
        if *self.handle.shared.lifecycle.borrow() == Lifecycle::Building {
            self.handle.shared.set_stopped();
        }
    }
}
