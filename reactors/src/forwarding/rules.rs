//! The connector's rules, each a small pure step the forwarding pipeline runs in order (as ilp-connector's
//! middlewares and interledger-rs's services): rate limit, maximum packet amount, throughput, balance, expiry and
//! fulfillment check. Each returns `Ok` or the Reject to send, with ilp-connector's code and message.

use crate::ilp::packet::amount_too_large_data;
use crate::ilp::{Address, ErrorCode, Fulfill, Reject, Timestamp, fulfills};

/// A token bucket refilled continuously, exact in integers: `rate` tokens per second, at most `rate` held.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    // Thousandths of a token, so a millisecond's refill is exact.
    milli_tokens: u128,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u64, now: Timestamp) -> TokenBucket {
        TokenBucket { rate, milli_tokens: u128::from(rate) * 1000, last_ms: now.unix_ms() }
    }

    /// Takes `n` tokens if there are that many; a clock that goes backwards refills nothing.
    pub fn take(&mut self, n: u64, now: Timestamp) -> bool {
        let elapsed = now.unix_ms().saturating_sub(self.last_ms).max(0);
        if elapsed > 0 {
            let cap = u128::from(self.rate) * 1000;
            self.milli_tokens =
                (self.milli_tokens + u128::from(elapsed.unsigned_abs()) * u128::from(self.rate)).min(cap);
            self.last_ms = now.unix_ms();
        }
        let need = u128::from(n) * 1000;
        if need <= self.milli_tokens {
            self.milli_tokens -= need;
            true
        } else {
            false
        }
    }
}

/// Rate limit: one token per incoming packet (T05).
pub fn rate_limit(bucket: Option<&mut TokenBucket>, now: Timestamp, us: &Address) -> Result<(), Reject> {
    if let Some(b) = bucket
        && !b.take(1, now)
    {
        return Err(Reject::new(ErrorCode::T05_RATE_LIMITED, us, "too many requests, throttling."));
    }
    Ok(())
}

/// Maximum packet amount (F08, with the received and maximum amounts as data).
pub fn max_packet_amount(max: Option<u64>, amount: u64, us: &Address) -> Result<(), Reject> {
    match max {
        Some(max) if amount > max => Err(Reject::new(
            ErrorCode::F08_AMOUNT_TOO_LARGE,
            us,
            format!("packet size too large. maxAmount={max} actualAmount={amount}"),
        )
        .with_data(amount_too_large_data(amount, max))),
        _ => Ok(()),
    }
}

/// Throughput: the amount per second an account may send us (T04).
pub fn throughput(bucket: Option<&mut TokenBucket>, amount: u64, now: Timestamp, us: &Address) -> Result<(), Reject> {
    if let Some(b) = bucket
        && amount > 0
        && !b.take(amount, now)
    {
        return Err(Reject::new(ErrorCode::T04_INSUFFICIENT_LIQUIDITY, us, "exceeded money bandwidth, throttling."));
    }
    Ok(())
}

/// Incoming balance: what they would owe us with this Prepare, counting Prepares still in flight, stays within
/// `max_balance` (T04).
pub fn incoming_balance(
    balance: i128,
    reserved_in: u128,
    max: Option<i64>,
    amount: u64,
    us: &Address,
) -> Result<(), Reject> {
    let Some(max) = max else { return Ok(()) };
    let proposed = balance.saturating_add_unsigned(reserved_in).saturating_add_unsigned(u128::from(amount));
    if amount > 0 && proposed > i128::from(max) {
        return Err(Reject::new(
            ErrorCode::T04_INSUFFICIENT_LIQUIDITY,
            us,
            format!("exceeded maximum balance. maxBalance={max} proposedBalance={proposed}"),
        ));
    }
    Ok(())
}

/// Outgoing balance: what we would owe them if every Prepare in flight to them is fulfilled stays within
/// `min_balance` (T04). ilp-connector checks this only after the next hop has fulfilled (and then answers F00);
/// checking before forwarding keeps the limit without a loss.
pub fn outgoing_balance(
    balance: i128,
    reserved_out: u128,
    min: Option<i64>,
    amount: u64,
    us: &Address,
) -> Result<(), Reject> {
    let Some(min) = min else { return Ok(()) };
    let proposed = balance.saturating_sub_unsigned(reserved_out).saturating_sub_unsigned(u128::from(amount));
    if amount > 0 && proposed < i128::from(min) {
        return Err(Reject::new(
            ErrorCode::T04_INSUFFICIENT_LIQUIDITY,
            us,
            format!("insufficient funds. minBalance={min} proposedBalance={proposed}"),
        ));
    }
    Ok(())
}

/// Expiry: the outgoing expiry is the incoming one less `min_message_window`, at most `max_hold_time` from now,
/// and must leave at least `min_message_window` (R02).
pub fn outgoing_expiry(
    source: Timestamp,
    now: Timestamp,
    min_message_window_ms: i64,
    max_hold_time_ms: i64,
    us: &Address,
) -> Result<Timestamp, Reject> {
    if source < now {
        return Err(Reject::new(
            ErrorCode::R02_INSUFFICIENT_TIMEOUT,
            us,
            format!("source transfer has already expired. sourceExpiry={source} currentTime={now}"),
        ));
    }
    let dest = source.plus_ms(-min_message_window_ms).min(now.plus_ms(max_hold_time_ms));
    if dest.unix_ms() - now.unix_ms() < min_message_window_ms {
        return Err(Reject::new(
            ErrorCode::R02_INSUFFICIENT_TIMEOUT,
            us,
            format!(
                "source transfer expires too soon to complete payment. actualSourceExpiry={source} requiredSourceExpiry={} currentTime={now}",
                now.plus_ms(2 * min_message_window_ms)
            ),
        ));
    }
    Ok(dest)
}

/// Fulfillment check: a Fulfill whose preimage does not hash to the condition becomes F05 (and is not passed on).
pub fn check_fulfillment(fulfill: &Fulfill, condition: &[u8; 32], us: &Address) -> Result<(), Reject> {
    if fulfills(&fulfill.fulfillment, condition) {
        Ok(())
    } else {
        Err(Reject::new(ErrorCode::F05_WRONG_CONDITION, us, "fulfillment did not match expected value."))
    }
}

/// The Reject for a packet we cannot route.
pub fn no_route(source: &str, destination: &Address, us: &Address) -> Reject {
    Reject::new(ErrorCode::F02_UNREACHABLE, us, format!("no route found. source={source} destination={destination}"))
}

/// The Reject for bytes that arrived as a Prepare but are not one, with ilp-connector's codes: another packet
/// type is F01, anything malformed is F00 (its parse error).
pub fn bad_prepare(error: &crate::ilp::PacketError, us: &Address) -> Reject {
    match error {
        crate::ilp::PacketError::NotAPrepare(t) => {
            Reject::new(ErrorCode::F01_INVALID_PACKET, us, format!("invalid packet type received. type={t}"))
        }
        e => Reject::new(ErrorCode::F00_BAD_REQUEST, us, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn us() -> Address {
        Address::parse("test.conn").unwrap()
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(1_700_000_000_000 + ms)
    }

    #[test]
    fn a_token_bucket_refills_exactly_and_never_beyond_its_capacity() {
        let mut b = TokenBucket::new(2, at(0));
        assert!(b.take(1, at(0)) && b.take(1, at(0)) && !b.take(1, at(0)));
        assert!(!b.take(1, at(499)));
        assert!(b.take(1, at(500)));
        // A long pause refills to the capacity, not more.
        assert!(b.take(2, at(100_000)) && !b.take(1, at(100_000)));
        // A clock that goes back refills nothing.
        assert!(!b.take(1, at(50_000)));
    }

    #[test]
    fn the_rate_limit_answers_t05_when_the_bucket_is_empty() {
        let mut b = TokenBucket::new(1, at(0));
        assert!(rate_limit(Some(&mut b), at(0), &us()).is_ok());
        let r = rate_limit(Some(&mut b), at(1), &us()).unwrap_err();
        assert_eq!((r.code, r.message.as_str()), (ErrorCode::T05_RATE_LIMITED, "too many requests, throttling."));
        assert!(rate_limit(None, at(1), &us()).is_ok());
    }

    #[test]
    fn over_the_maximum_packet_amount_is_f08_with_both_amounts() {
        assert!(max_packet_amount(Some(1000), 1000, &us()).is_ok());
        let r = max_packet_amount(Some(1000), 1001, &us()).unwrap_err();
        assert_eq!(r.code, ErrorCode::F08_AMOUNT_TOO_LARGE);
        assert_eq!(r.message, "packet size too large. maxAmount=1000 actualAmount=1001");
        assert_eq!(&r.data[..], &[0, 0, 0, 0, 0, 0, 3, 0xe9, 0, 0, 0, 0, 0, 0, 3, 0xe8]);
        assert_eq!(r.triggered_by, Some(us()));
    }

    #[test]
    fn throughput_counts_amounts_and_ignores_zero() {
        let mut b = TokenBucket::new(100, at(0));
        assert!(throughput(Some(&mut b), 60, at(0), &us()).is_ok());
        assert_eq!(throughput(Some(&mut b), 60, at(0), &us()).unwrap_err().code, ErrorCode::T04_INSUFFICIENT_LIQUIDITY);
        assert!(throughput(Some(&mut b), 0, at(0), &us()).is_ok());
        assert!(throughput(Some(&mut b), 60, at(200), &us()).is_ok());
    }

    #[test]
    fn balances_count_what_is_in_flight() {
        assert!(incoming_balance(1234, 0, Some(1500), 266, &us()).is_ok());
        assert_eq!(
            incoming_balance(1234, 0, Some(1500), 1000, &us()).unwrap_err().code,
            ErrorCode::T04_INSUFFICIENT_LIQUIDITY
        );
        assert!(incoming_balance(1000, 400, Some(1500), 101, &us()).is_err());
        assert!(incoming_balance(i128::MAX, u128::MAX, None, u64::MAX, &us()).is_ok());
        assert!(outgoing_balance(0, 0, Some(-50), 50, &us()).is_ok());
        assert!(outgoing_balance(0, 0, Some(-50), 100, &us()).is_err());
        assert!(outgoing_balance(0, 30, Some(-50), 30, &us()).is_err());
        // Zero-amount packets (ILDCP, probes) always pass.
        assert!(outgoing_balance(-100, 0, Some(-50), 0, &us()).is_ok());
    }

    #[test]
    fn expiry_is_shortened_capped_and_refused_when_too_short() {
        let now = at(0);
        assert_eq!(outgoing_expiry(at(10_000), now, 1000, 30_000, &us()), Ok(at(9_000)));
        assert_eq!(outgoing_expiry(at(60_000), now, 1000, 30_000, &us()), Ok(at(30_000)));
        let r = outgoing_expiry(at(1_500), now, 1000, 30_000, &us()).unwrap_err();
        assert_eq!(r.code, ErrorCode::R02_INSUFFICIENT_TIMEOUT);
        assert!(r.message.starts_with("source transfer expires too soon to complete payment."), "{}", r.message);
        let r = outgoing_expiry(at(-1), now, 1000, 30_000, &us()).unwrap_err();
        assert!(r.message.starts_with("source transfer has already expired."), "{}", r.message);
        assert!(outgoing_expiry(at(2_000), now, 1000, 30_000, &us()).is_ok());
    }

    #[test]
    fn a_fulfillment_that_does_not_match_is_f05() {
        let f = Fulfill { fulfillment: [7; 32], data: Bytes::new() };
        assert!(check_fulfillment(&f, &crate::ilp::condition_of(&[7; 32]), &us()).is_ok());
        let r = check_fulfillment(&f, &[0; 32], &us()).unwrap_err();
        assert_eq!(
            (r.code, r.message.as_str()),
            (ErrorCode::F05_WRONG_CONDITION, "fulfillment did not match expected value.")
        );
    }
}
