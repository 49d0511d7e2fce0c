//! Accounts: one counterparty each (a p2p peer, or a local app over ILP-over-HTTP), its asset, its limits and
//! its balance. [`AccountSpec`] is the form config files, the admin API and the database use; [`Account`] is the
//! validated form the connector works with. Balances live in the [`store`].

pub mod store;

use std::fmt;
use std::sync::Arc;

use ledgerwire_types::{NodeId, WireProfile};
use serde::{Deserialize, Serialize};

use crate::ilp::address::Address;

/// The longest account ID.
pub const MAX_ACCOUNT_ID_LEN: usize = 64;

/// An account ID: one ILP address segment (letters, digits, `_ ~ -`), so a child's address is ours plus its ID.
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(Arc<str>);

impl PartialEq for AccountId {
    #[inline]
    fn eq(&self, other: &AccountId) -> bool {
        // IDs compared on the forwarding path are mostly clones of one another: the pointer answers first.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

// Equal IDs have equal text, so hashing the text agrees with `eq`.
impl std::hash::Hash for AccountId {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl AccountId {
    /// Validates an account ID.
    pub fn new(s: &str) -> Result<AccountId, AccountError> {
        if s.is_empty()
            || s.len() > MAX_ACCOUNT_ID_LEN
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-'))
        {
            return Err(AccountError::new(
                "id",
                format!("{s:?} is not an account ID (1 to {MAX_ACCOUNT_ID_LEN} of letters, digits, _ ~ -)"),
            ));
        }
        Ok(AccountId(s.into()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountError;
    fn try_from(s: String) -> Result<Self, AccountError> {
        AccountId::new(&s)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

/// What the counterparty is to us (ilp-connector's relations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Our upstream: the default route, and the source of our address when none is configured.
    Parent,
    /// An equal: routes both ways.
    Peer,
    /// A customer: gets an address under ours by ILDCP.
    Child,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::Parent => "parent",
            Relation::Peer => "peer",
            Relation::Child => "child",
        })
    }
}

/// How a local app is reached over ILP-over-HTTP.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpLink {
    /// Where we POST the app's packets (`http://…`).
    pub url: String,
    /// The bearer token the app presents to us.
    pub incoming_token: String,
    /// The bearer token we present to the app.
    pub outgoing_token: String,
}

impl fmt::Debug for HttpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLink").field("url", &self.url).finish_non_exhaustive()
    }
}

/// An account as written in config.toml (`[[ilp.accounts]]`), posted to the admin API and stored in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The account ID.
    pub id: String,
    /// `parent`, `peer` or `child`.
    pub relation: Relation,
    /// Asset code (`USD`, `XRP`, …).
    pub asset_code: String,
    /// Asset scale: amounts are in units of 10^-scale.
    pub asset_scale: u8,
    /// The p2p peer behind the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The local app behind the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpLink>,
    /// Largest Prepare accepted from this account (F08 above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packet_amount: Option<u64>,
    /// Lowest balance (we owe them at most -min_balance); outgoing Prepares that would go below get T04.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_balance: Option<i64>,
    /// Highest balance (they owe us at most this); incoming Prepares that would go above get T04.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_balance: Option<i64>,
    /// When the balance falls below this, a settlement is needed (up to `settle_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_threshold: Option<i64>,
    /// The balance a settlement brings the account back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_to: Option<i64>,
    /// Incoming packets per second (T05 above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Incoming amount per second (T04 above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_limit: Option<u64>,
    /// Whether we send it our routes (default: yes unless a child).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_routes: Option<bool>,
    /// Whether we take routes from it (default: yes unless a child).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_routes: Option<bool>,
    /// Address prefixes it may announce routes for: its own address, or more for a peer that carries traffic to
    /// others (default: a parent anything under our global prefix, others nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_prefixes: Option<Vec<String>>,
}

/// Why an account specification is invalid: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct AccountError {
    /// The offending field (`id`, `http.url`, …).
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl AccountError {
    fn new(field: &'static str, reason: impl Into<String>) -> AccountError {
        AccountError { field, reason: reason.into() }
    }
}

/// The counterparty's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A p2p peer, on the forwarding channel.
    Peer(NodeId),
    /// A local app over ILP-over-HTTP.
    Http(HttpLink),
    /// An in-process endpoint attached through the connector's handle (tests, benchmarks, embedding apps).
    InProcess,
}

/// A validated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The ID.
    pub id: AccountId,
    /// The relation.
    pub relation: Relation,
    /// The asset code.
    pub asset_code: String,
    /// The asset scale.
    pub asset_scale: u8,
    /// How packets reach the counterparty.
    pub link: Link,
    /// Largest incoming Prepare.
    pub max_packet_amount: Option<u64>,
    /// Lowest balance.
    pub min_balance: Option<i64>,
    /// Highest balance.
    pub max_balance: Option<i64>,
    /// Settlement trigger.
    pub settle_threshold: Option<i64>,
    /// Settlement target.
    pub settle_to: i64,
    /// Packets per second.
    pub rate_limit: Option<u32>,
    /// Amount per second.
    pub throughput_limit: Option<u64>,
    /// Whether we send it our routes.
    pub send_routes: bool,
    /// Whether we take routes from it.
    pub receive_routes: bool,
    /// Prefixes it may announce (`None`: by relation).
    pub allowed_prefixes: Option<Vec<String>>,
}

impl AccountSpec {
    /// An account with its required fields only: no link (`node_id` and `http` unset) and no limits.
    pub fn new(id: &str, relation: Relation, asset_code: &str, asset_scale: u8) -> AccountSpec {
        AccountSpec {
            id: id.into(),
            relation,
            asset_code: asset_code.into(),
            asset_scale,
            node_id: None,
            http: None,
            max_packet_amount: None,
            min_balance: None,
            max_balance: None,
            settle_threshold: None,
            settle_to: None,
            rate_limit: None,
            throughput_limit: None,
            send_routes: None,
            receive_routes: None,
            allowed_prefixes: None,
        }
    }

    /// Validates the specification. `profile` decides the notation of `node_id`. With `allow_in_process`, an
    /// account with neither `node_id` nor `http` is attached in process; otherwise that is an error.
    pub fn validate(&self, profile: WireProfile, allow_in_process: bool) -> Result<Account, AccountError> {
        let id = AccountId::new(&self.id)?;
        if self.asset_code.is_empty()
            || self.asset_code.len() > 16
            || !self.asset_code.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(AccountError::new(
                "asset_code",
                format!("{:?} is not an asset code (1 to 16 printable ASCII characters)", self.asset_code),
            ));
        }
        let link = match (&self.node_id, &self.http) {
            (Some(_), Some(_)) => {
                return Err(AccountError::new("node_id", "an account has either node_id or http, not both"));
            }
            (Some(n), None) => {
                Link::Peer(NodeId::parse(n, profile).map_err(|e| AccountError::new("node_id", e.to_string()))?)
            }
            (None, Some(h)) => {
                let rest = h.url.strip_prefix("http://").ok_or_else(|| {
                    AccountError::new(
                        "http.url",
                        format!("{:?} must start with http:// (put TLS in front with a proxy)", h.url),
                    )
                })?;
                if rest.is_empty() || rest.contains(char::is_whitespace) {
                    return Err(AccountError::new("http.url", format!("{:?} has no host", h.url)));
                }
                if h.url.parse::<hyper::Uri>().is_err() {
                    return Err(AccountError::new("http.url", format!("{:?} is not a URL", h.url)));
                }
                for (field, token) in
                    [("http.incoming_token", &h.incoming_token), ("http.outgoing_token", &h.outgoing_token)]
                {
                    if token.len() < 16 || !token.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(AccountError::new(
                            field,
                            "a token is at least 16 printable ASCII characters, without spaces",
                        ));
                    }
                }
                Link::Http(h.clone())
            }
            (None, None) if allow_in_process => Link::InProcess,
            (None, None) => {
                return Err(AccountError::new(
                    "node_id",
                    "an account needs node_id (a p2p peer) or http (a local app)",
                ));
            }
        };
        if let (Some(min), Some(max)) = (self.min_balance, self.max_balance)
            && min > max
        {
            return Err(AccountError::new("min_balance", format!("{min} is above max_balance {max}")));
        }
        let settle_to = self.settle_to.unwrap_or(0);
        if let Some(threshold) = self.settle_threshold {
            if settle_to < threshold {
                return Err(AccountError::new(
                    "settle_to",
                    format!("{settle_to} is below settle_threshold {threshold}"),
                ));
            }
        } else if self.settle_to.is_some() {
            return Err(AccountError::new("settle_to", "set settle_threshold too, or leave settle_to out"));
        }
        if self.rate_limit == Some(0) {
            return Err(AccountError::new("rate_limit", "0 would refuse every packet; leave it out for no limit"));
        }
        if self.throughput_limit == Some(0) {
            return Err(AccountError::new(
                "throughput_limit",
                "0 would refuse every payment; leave it out for no limit",
            ));
        }
        if let Some(list) = &self.allowed_prefixes {
            for prefix in list {
                crate::ilp::address::validate_prefix(prefix)
                    .map_err(|e| AccountError::new("allowed_prefixes", format!("{prefix:?}: {e}")))?;
            }
        }
        let routes_by_default = self.relation != Relation::Child;
        Ok(Account {
            id,
            relation: self.relation,
            asset_code: self.asset_code.clone(),
            asset_scale: self.asset_scale,
            link,
            max_packet_amount: self.max_packet_amount,
            min_balance: self.min_balance,
            max_balance: self.max_balance,
            settle_threshold: self.settle_threshold,
            settle_to,
            rate_limit: self.rate_limit,
            throughput_limit: self.throughput_limit,
            send_routes: self.send_routes.unwrap_or(routes_by_default),
            receive_routes: self.receive_routes.unwrap_or(routes_by_default),
            allowed_prefixes: self.allowed_prefixes.clone(),
        })
    }
}

impl Account {
    /// The child address of this account under `ours` (`g.conn` + `alice`).
    pub fn child_address(&self, ours: &Address) -> Option<Address> {
        ours.with_suffix(self.id.as_str()).ok()
    }

    /// The p2p peer behind the account, if any.
    pub fn node_id(&self) -> Option<&NodeId> {
        match &self.link {
            Link::Peer(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AccountSpec {
        AccountSpec {
            http: Some(HttpLink {
                url: "http://127.0.0.1:3000/ilp".into(),
                incoming_token: "in-token-0123456789".into(),
                outgoing_token: "out-token-0123456789".into(),
            }),
            ..AccountSpec::new("alice", Relation::Child, "USD", 9)
        }
    }

    #[test]
    fn a_valid_spec_becomes_an_account_and_bad_fields_are_named() {
        assert!(spec().validate(WireProfile::Tm2, false).is_ok());
        let field = |s: AccountSpec| s.validate(WireProfile::Tm2, false).unwrap_err().field;
        assert_eq!(field(AccountSpec { id: "a.b".into(), ..spec() }), "id");
        assert_eq!(field(AccountSpec { asset_code: String::new(), ..spec() }), "asset_code");
        let mut s = spec();
        s.http.as_mut().unwrap().url = "https://x".into();
        assert_eq!(field(s), "http.url");
        let mut s = spec();
        s.http.as_mut().unwrap().incoming_token = "short".into();
        assert_eq!(field(s), "http.incoming_token");
        assert_eq!(field(AccountSpec { http: None, ..spec() }), "node_id");
        assert_eq!(field(AccountSpec { node_id: Some("nope".into()), http: None, ..spec() }), "node_id");
        assert_eq!(field(AccountSpec { min_balance: Some(5), max_balance: Some(1), ..spec() }), "min_balance");
        assert_eq!(field(AccountSpec { settle_threshold: Some(-10), settle_to: Some(-20), ..spec() }), "settle_to");
        assert_eq!(field(AccountSpec { rate_limit: Some(0), ..spec() }), "rate_limit");
        assert_eq!(field(AccountSpec { allowed_prefixes: Some(vec!["g.".into()]), ..spec() }), "allowed_prefixes");
        assert!(AccountSpec { http: None, ..spec() }.validate(WireProfile::Tm2, true).is_ok());
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let text = format!("{:?}", spec());
        assert!(!text.contains("in-token") && !text.contains("out-token"), "{text}");
    }
}
