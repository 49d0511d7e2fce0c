//! Switch settings, and the checks a switch runs on them before it starts.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use ledgerwire_conn::mconnection::MConnectionConfig;
use ledgerwire_types::{HostAddress, NodeId};

use super::backoff::Backoff;
use crate::transport::TransportConfig;

/// Switch settings. [`SwitchConfig::new`] fills in the reference defaults.
#[derive(Clone, Debug)]
pub struct SwitchConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// The address to advertise instead of the listen address.
    pub external_address: Option<SocketAddr>,
    /// The network (chain ID) peers must share.
    pub network: String,
    /// Our human-readable name.
    pub moniker: String,
    /// Our software version, advertised in NodeInfo.
    pub software_version: String,
    /// tm2 only: version-set entries advertised as required, name → version. Each replaces a default entry of the
    /// same name. A gno node requires its whole set (`abci`, `app`, `bft`, `blockchain`, `p2p`) on its peers.
    pub advertise_versions: BTreeMap<String, String>,
    /// Most inbound non-persistent peers. Default 40.
    pub max_inbound: usize,
    /// Most outbound non-persistent peers. Default 10.
    pub max_outbound: usize,
    /// Most dials at once. Default 8.
    pub max_dials_in_flight: usize,
    /// Most queued dials. Default 1000.
    pub dial_queue_capacity: usize,
    /// Most address probes (a dial that only checks who answers) at once. Default 2.
    pub max_probes_in_flight: usize,
    /// Peers to keep connected, at these addresses.
    pub persistent_peers: Vec<HostAddress>,
    /// Peers never shared with others.
    pub private_peer_ids: Vec<NodeId>,
    /// Handshake deadlines and inbound caps.
    pub transport: TransportConfig,
    /// Per-connection settings.
    pub connection: MConnectionConfig,
    /// Redial schedule of persistent peers.
    pub backoff: Backoff,
    /// How long a graceful stop waits for queued messages to go out, and for reactors to take their last events.
    /// Default 2 s.
    pub stop_grace: Duration,
}

impl SwitchConfig {
    /// Defaults for `network`, listening on `listen_addr`.
    pub fn new(listen_addr: SocketAddr, network: &str) -> Self {
        SwitchConfig {
            listen_addr,
            external_address: None,
            network: network.into(),
            moniker: "ledgerwire".into(),
            software_version: concat!("v", env!("CARGO_PKG_VERSION")).into(),
            advertise_versions: BTreeMap::new(),
            max_inbound: 40,
            max_outbound: 10,
            max_dials_in_flight: 8,
            dial_queue_capacity: 1000,
            max_probes_in_flight: 2,
            persistent_peers: Vec::new(),
            private_peer_ids: Vec::new(),
            transport: TransportConfig::default(),
            connection: MConnectionConfig::default(),
            backoff: Backoff::default(),
            stop_grace: Duration::from_secs(2),
        }
    }

    /// Checks what a switch with identity `own_id` needs of these settings (connection settings and NodeInfo are
    /// checked separately when the switch starts).
    pub fn validate(&self, own_id: NodeId) -> Result<(), SwitchConfigError> {
        let mut seen = HashSet::new();
        for address in &self.persistent_peers {
            if address.id() == own_id {
                return Err(SwitchConfigError::PersistentSelf(address.to_string()));
            }
            if !seen.insert(address.id()) {
                return Err(SwitchConfigError::PersistentTwice(address.id()));
            }
        }
        if self.max_dials_in_flight == 0 {
            return Err(SwitchConfigError::Zero("max_dials_in_flight"));
        }
        self.transport.validate()?;
        Ok(())
    }
}

/// Why switch settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchConfigError {
    /// A persistent peer is this node.
    #[error("persistent peer {0} is this node itself")]
    PersistentSelf(String),
    /// A persistent peer ID is listed twice.
    #[error("persistent peer {0} is listed twice")]
    PersistentTwice(NodeId),
    /// A count that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A transport setting is out of range.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerwire_types::{NodeKey, WireProfile};

    #[test]
    fn ourselves_or_a_peer_twice_among_persistent_peers_is_refused() {
        let me = NodeKey::from_seed(&[1; 32]).node_id(WireProfile::Tm2);
        let other = NodeKey::from_seed(&[2; 32]).node_id(WireProfile::Tm2);
        let addr =
            |id: NodeId, port: u16| HostAddress::parse(&format!("{id}@127.0.0.1:{port}"), WireProfile::Tm2).unwrap();
        let mut c = SwitchConfig::new(([127, 0, 0, 1], 0).into(), "net");
        assert_eq!(c.validate(me), Ok(()));
        c.persistent_peers = vec![addr(other, 1), addr(other, 2)];
        assert_eq!(c.validate(me), Err(SwitchConfigError::PersistentTwice(other)));
        c.persistent_peers = vec![addr(me, 1)];
        assert!(matches!(c.validate(me), Err(SwitchConfigError::PersistentSelf(_))));
        c.persistent_peers.clear();
        c.max_dials_in_flight = 0;
        assert_eq!(c.validate(me), Err(SwitchConfigError::Zero("max_dials_in_flight")));
    }
}
