//! Connection-wide settings.

use std::time::Duration;

use super::channel::ConfigError;

/// Settings of one multiplexed connection. [`Default`] gives the reference node's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MConnectionConfig {
    /// Largest data payload per packet. It must match the network: reference peers drop connections whose packets
    /// exceed their own setting. Default 1024.
    pub max_packet_msg_payload_size: usize,
    /// Bytes per second this side sends at most; 0 means unlimited. Default 5,120,000.
    pub send_rate: u64,
    /// Bytes per second this side reads at most; 0 means unlimited. Default 5,120,000.
    pub recv_rate: u64,
    /// Written packets are flushed to the socket at most this long after the first of them; zero flushes as soon as
    /// the send queues are empty. Pings and pongs are always flushed at once. Default 100 ms.
    pub flush_throttle: Duration,
    /// How often we ping. Default 60 s.
    pub ping_interval: Duration,
    /// How long we wait for a pong before closing the connection; less than `ping_interval`. Default 45 s.
    pub pong_timeout: Duration,
    /// How long [`MConnection::send`](super::MConnection::send) waits for room in a full send queue. Default 10 s.
    pub send_timeout: Duration,
}

impl Default for MConnectionConfig {
    fn default() -> Self {
        MConnectionConfig {
            max_packet_msg_payload_size: 1024,
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            flush_throttle: Duration::from_millis(100),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest payload setting we accept (a packet must stay far below the secret connection's read buffers).
pub const MAX_PAYLOAD_SETTING: usize = 64 * 1024;

impl MConnectionConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason| Err(ConfigError::Setting { field, reason });
        if self.max_packet_msg_payload_size == 0 || self.max_packet_msg_payload_size > MAX_PAYLOAD_SETTING {
            return fail("max_packet_msg_payload_size", "must be between 1 and 65536");
        }
        if self.ping_interval.is_zero() {
            return fail("ping_interval", "must be greater than zero");
        }
        if self.pong_timeout.is_zero() || self.pong_timeout >= self.ping_interval {
            return fail("pong_timeout", "must be greater than zero and less than ping_interval");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(MConnectionConfig::default().validate(), Ok(()));
        let c = MConnectionConfig { pong_timeout: Duration::from_secs(60), ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().starts_with("pong_timeout:"));
        let c = MConnectionConfig { max_packet_msg_payload_size: 0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().starts_with("max_packet_msg_payload_size:"));
        let c = MConnectionConfig { ping_interval: Duration::ZERO, ..Default::default() };
        assert!(c.validate().is_err());
    }
}
