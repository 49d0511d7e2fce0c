//! Channel descriptors: the logical streams multiplexed over one connection.

use super::ChannelId;

/// Default bound of a channel's receive queue: several read bursts.
pub const DEFAULT_RECV_BUFFER_CAPACITY: usize = 256 * 1024;

/// A channel's identity, priority and limits.
///
/// `priority` weighs the channel's share of the send bandwidth when several channels have data (a priority-5 channel
/// gets about five times the bytes of a priority-1 channel). The capacities bound memory per connection:
/// - `send_queue_capacity`: messages waiting to be sent on this channel;
/// - `recv_buffer_capacity`: bytes of received, complete messages waiting for this channel's consumer (each message
///   counts its length plus 64 bytes; one message always fits, however large). It should hold a read burst (64
///   frames, up to about 100 KB of small messages), so the default is 256 KiB; TM2's 4096 sized a reassembly
///   buffer, not a delivery queue;
/// - `recv_message_capacity`: the largest message accepted on this channel, after reassembly.
///
/// `low_latency` channels (request/response protocols, pings) are flushed as soon as the send queues drain after one
/// of their packets is written; other channels wait for the connection's flush throttle, which batches bulk traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelDescriptor {
    /// The channel ID (one byte on the wire).
    pub id: ChannelId,
    /// Relative send priority, at least 1.
    pub priority: u32,
    /// Messages queued for sending before `try_send` fails and `send` waits.
    pub send_queue_capacity: usize,
    /// Bytes of received messages queued for the consumer before the connection is closed as stalled.
    pub recv_buffer_capacity: usize,
    /// Largest reassembled message accepted.
    pub recv_message_capacity: usize,
    /// Flush this channel's packets without waiting for the flush throttle.
    pub low_latency: bool,
}

impl ChannelDescriptor {
    /// A descriptor with the reference defaults (send queue 1, messages up to 21 MiB) and a receive queue of 256 KiB.
    pub fn new(id: ChannelId, priority: u32) -> Self {
        ChannelDescriptor {
            id,
            priority,
            send_queue_capacity: 1,
            recv_buffer_capacity: DEFAULT_RECV_BUFFER_CAPACITY,
            recv_message_capacity: 22_020_096,
            low_latency: false,
        }
    }

    /// Marks the channel low-latency: its packets are flushed as soon as the send queues drain.
    pub fn with_low_latency(mut self) -> Self {
        self.low_latency = true;
        self
    }

    /// Sets the send queue capacity.
    pub fn with_send_queue_capacity(mut self, n: usize) -> Self {
        self.send_queue_capacity = n;
        self
    }

    /// Sets the receive buffer capacity in bytes.
    pub fn with_recv_buffer_capacity(mut self, n: usize) -> Self {
        self.recv_buffer_capacity = n;
        self
    }

    /// Sets the largest message accepted.
    pub fn with_recv_message_capacity(mut self, n: usize) -> Self {
        self.recv_message_capacity = n;
        self
    }

    /// Checks a connection's set of descriptors: at least one, unique IDs, priorities and capacities above zero.
    pub fn validate_set(channels: &[ChannelDescriptor]) -> Result<(), ConfigError> {
        validate(channels)
    }
}

/// Why a set of channel descriptors or a connection configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No channels.
    #[error("a connection needs at least one channel")]
    NoChannels,
    /// Priority 0.
    #[error("channel {0:#04x}: priority must be at least 1")]
    ZeroPriority(ChannelId),
    /// A channel ID appears twice.
    #[error("channel {0:#04x} is declared twice")]
    DuplicateChannel(ChannelId),
    /// A zero capacity.
    #[error("channel {channel:#04x}: {field} must be greater than zero")]
    ZeroCapacity {
        /// The channel.
        channel: ChannelId,
        /// The field that is zero.
        field: &'static str,
    },
    /// A connection setting is out of range.
    #[error("{field}: {reason}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Checks a set of descriptors.
pub(crate) fn validate(channels: &[ChannelDescriptor]) -> Result<(), ConfigError> {
    if channels.is_empty() {
        return Err(ConfigError::NoChannels);
    }
    let mut seen = [false; 256];
    for c in channels {
        if std::mem::replace(&mut seen[usize::from(c.id)], true) {
            return Err(ConfigError::DuplicateChannel(c.id));
        }
        if c.priority == 0 {
            return Err(ConfigError::ZeroPriority(c.id));
        }
        for (field, value) in [
            ("send_queue_capacity", c.send_queue_capacity),
            ("recv_buffer_capacity", c.recv_buffer_capacity),
            ("recv_message_capacity", c.recv_message_capacity),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroCapacity { channel: c.id, field });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_descriptor_sets_are_refused_with_the_reason() {
        let ok = ChannelDescriptor::new(0x20, 1);
        assert_eq!(validate(&[]), Err(ConfigError::NoChannels));
        assert_eq!(validate(&[ok, ChannelDescriptor::new(0x20, 5)]), Err(ConfigError::DuplicateChannel(0x20)));
        assert_eq!(validate(&[ChannelDescriptor::new(0x30, 0)]), Err(ConfigError::ZeroPriority(0x30)));
        let e = validate(&[ok.with_send_queue_capacity(0)]).unwrap_err();
        assert_eq!(e.to_string(), "channel 0x20: send_queue_capacity must be greater than zero");
        assert!(validate(&[ok.with_recv_buffer_capacity(0)]).is_err());
        assert!(validate(&[ok.with_recv_message_capacity(0)]).is_err());
        assert_eq!(validate(&[ok, ChannelDescriptor::new(0x00, 1), ChannelDescriptor::new(0xff, 10)]), Ok(()));
    }
}
