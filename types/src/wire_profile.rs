//! The wire profile: which real network's bytes a node speaks.

use std::fmt;
use std::str::FromStr;

/// Which network's wire format a node speaks.
///
/// A node picks one profile at start-up and every component that encodes bytes (IDs, the secret connection, packets,
/// NodeInfo, discovery) follows it. The two profiles cannot talk to each other: they diverge at the first encrypted
/// message of the handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireProfile {
    /// gno's Tendermint2: bech32 `g1…` node IDs, amino-shaped messages, the challenge taken from HKDF output.
    #[default]
    Tm2,
    /// CometBFT v0.34 and later: lowercase hex node IDs, protobuf messages, the merlin transcript challenge.
    CometBft,
}

impl WireProfile {
    /// Every profile, in a stable order (useful for tests that must cover both).
    pub const ALL: [WireProfile; 2] = [WireProfile::Tm2, WireProfile::CometBft];

    /// The profile's name as written in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            WireProfile::Tm2 => "tm2",
            WireProfile::CometBft => "cometbft",
        }
    }
}

impl fmt::Display for WireProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a profile name that is neither `tm2` nor `cometbft`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown wire profile {0:?}: expected \"tm2\" or \"cometbft\"")]
pub struct UnknownProfile(pub String);

impl FromStr for WireProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tm2" => Ok(WireProfile::Tm2),
            "cometbft" => Ok(WireProfile::CometBft),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

impl serde::Serialize for WireProfile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for WireProfile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for profile in WireProfile::ALL {
            assert_eq!(profile.to_string().parse::<WireProfile>(), Ok(profile));
        }
        let err = "tendermint".parse::<WireProfile>().unwrap_err();
        assert!(err.to_string().contains("\"tendermint\""), "{err}");
        assert!("TM2".parse::<WireProfile>().is_err(), "names are case-sensitive");
    }
}
