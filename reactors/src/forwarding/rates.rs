//! Exchange rates: one-to-one between equal asset codes, configured prices otherwise, and a spread; amounts are
//! converted exactly in 256-bit integers and rounded down, as ilp-connector does (there is no R01 check: an amount
//! that rounds to zero is forwarded as zero).

use std::collections::HashMap;

use ethnum::U256;

/// A non-negative decimal, as written in config (`"1.0825"`): `mantissa × 10^-exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: u128,
    exponent: u32,
}

/// Why a decimal or a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Not a plain non-negative decimal with at most 18 significant digits.
    #[error("{0:?} is not a decimal number such as \"1.25\" (at most 18 digits)")]
    BadDecimal(String),
    /// No price for an asset code.
    #[error("no exchange rate for {0} (add it to [ilp.prices])")]
    NoRate(String),
    /// The converted amount does not fit 64 bits.
    #[error("the converted amount does not fit 64 bits")]
    Overflow,
}

impl Decimal {
    /// Parses `"12"`, `"0.002"`, `"1.0825"`.
    pub fn parse(s: &str) -> Result<Decimal, RateError> {
        let bad = || RateError::BadDecimal(s.chars().take(40).collect());
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if s.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 18 {
            return Err(bad());
        }
        let mantissa = if digits.is_empty() { 0 } else { digits.parse::<u128>().map_err(|_| bad())? };
        Ok(Decimal { mantissa, exponent: frac.len() as u32 })
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Whether the value is below one.
    pub fn below_one(&self) -> bool {
        U256::from(self.mantissa) < pow10(self.exponent).unwrap_or(U256::MAX)
    }
}

fn pow10(n: u32) -> Option<U256> {
    let mut v = U256::ONE;
    for _ in 0..n {
        v = v.checked_mul(U256::from(10u8))?;
    }
    Some(v)
}

/// Prices per asset code (in any common unit) and the spread we keep on every conversion.
#[derive(Debug, Clone)]
pub struct Rates {
    prices: HashMap<String, Decimal>,
    spread: Decimal,
}

impl Default for Rates {
    fn default() -> Self {
        Rates { prices: HashMap::new(), spread: Decimal { mantissa: 0, exponent: 0 } }
    }
}

impl Rates {
    /// Rates from prices and a spread (a fraction below one: `0.002` keeps 0.2%).
    pub fn new(prices: HashMap<String, Decimal>, spread: Decimal) -> Result<Rates, RateError> {
        if !spread.below_one() {
            return Err(RateError::BadDecimal("a spread must be below 1".into()));
        }
        for (code, price) in &prices {
            if price.is_zero() {
                return Err(RateError::BadDecimal(format!("price of {code} is zero")));
            }
        }
        Ok(Rates { prices, spread })
    }

    /// Converts `amount` of (`from_code`, `from_scale`) into (`to_code`, `to_scale`), rounding down.
    pub fn convert(
        &self,
        amount: u64,
        from_code: &str,
        from_scale: u8,
        to_code: &str,
        to_scale: u8,
    ) -> Result<u64, RateError> {
        // The common case, one asset on both sides and no spread, needs no wide arithmetic.
        if from_code == to_code && self.spread.is_zero() {
            let shift = |d: u8| 10u64.checked_pow(u32::from(d));
            return match to_scale.cmp(&from_scale) {
                std::cmp::Ordering::Equal => Ok(amount),
                std::cmp::Ordering::Less => Ok(shift(from_scale - to_scale).map_or(0, |p| amount / p)),
                std::cmp::Ordering::Greater => shift(to_scale - from_scale)
                    .and_then(|p| amount.checked_mul(p))
                    .ok_or(RateError::Overflow)
                    .or_else(|e| if amount == 0 { Ok(0) } else { Err(e) }),
            };
        }
        // value_out = amount × price_from / price_to × 10^(to_scale − from_scale) × (1 − spread)
        let (pf, pt) = if from_code == to_code {
            (Decimal { mantissa: 1, exponent: 0 }, Decimal { mantissa: 1, exponent: 0 })
        } else {
            let p = |c: &str| self.prices.get(c).copied().ok_or_else(|| RateError::NoRate(c.to_owned()));
            (p(from_code)?, p(to_code)?)
        };
        let keep = pow10(self.spread.exponent).ok_or(RateError::Overflow)? - U256::from(self.spread.mantissa);
        let mut num = U256::from(amount)
            .checked_mul(U256::from(pf.mantissa))
            .and_then(|v| v.checked_mul(keep))
            .ok_or(RateError::Overflow)?;
        let mut den = U256::from(pt.mantissa);
        // Powers of ten on each side, cancelled against each other before multiplying.
        let up = u32::from(to_scale) + pt.exponent;
        let down = u32::from(from_scale) + pf.exponent + self.spread.exponent;
        let common = up.min(down);
        match pow10(up - common) {
            Some(p) => num = num.checked_mul(p).ok_or(RateError::Overflow)?,
            None if num == U256::ZERO => {}
            None => return Err(RateError::Overflow),
        }
        match pow10(down - common).and_then(|p| den.checked_mul(p)) {
            Some(d) => den = d,
            // A denominator beyond 2^256 rounds any 64-bit amount down to zero.
            None => return Ok(0),
        }
        let out = num / den;
        if out > U256::from(u64::MAX) { Err(RateError::Overflow) } else { Ok(out.as_u64()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(spread: &str, prices: &[(&str, &str)]) -> Rates {
        let prices = prices.iter().map(|(c, p)| (c.to_string(), Decimal::parse(p).unwrap())).collect();
        Rates::new(prices, Decimal::parse(spread).unwrap()).unwrap()
    }

    #[test]
    fn equal_assets_convert_by_scale_and_round_down_as_ilp_connector() {
        let r = rates("0", &[]);
        assert_eq!(r.convert(100, "USD", 9, "USD", 9), Ok(100));
        assert_eq!(r.convert(999, "USD", 9, "USD", 6), Ok(0));
        assert_eq!(r.convert(1234, "USD", 9, "USD", 6), Ok(1));
        assert_eq!(r.convert(5, "USD", 2, "USD", 9), Ok(50_000_000));
        assert_eq!(r.convert(u64::MAX, "USD", 0, "USD", 1), Err(RateError::Overflow));
        assert_eq!(r.convert(u64::MAX, "USD", 255, "USD", 0), Ok(0));
        assert_eq!(r.convert(0, "USD", 0, "USD", 255), Ok(0));
    }

    #[test]
    fn the_fast_path_agrees_with_the_wide_arithmetic() {
        let fast = rates("0", &[]);
        let wide = rates("0", &[("USD", "1"), ("USX", "1")]);
        for amount in [0u64, 1, 999, 1234, 10_000, u64::MAX / 7, u64::MAX] {
            for (from, to) in [(9u8, 9u8), (9, 6), (6, 9), (0, 19), (0, 20), (255, 0), (0, 255), (2, 4)] {
                assert_eq!(
                    fast.convert(amount, "USD", from, "USD", to),
                    wide.convert(amount, "USD", from, "USX", to),
                    "{amount} {from}->{to}"
                );
            }
        }
    }

    #[test]
    fn the_spread_and_prices_apply_exactly() {
        let r = rates("0.002", &[("USD", "1"), ("EUR", "1.25")]);
        assert_eq!(r.convert(1000, "USD", 2, "USD", 2), Ok(998));
        // 1000 EUR cents = 1250 USD cents, less 0.2% = 1247.5 → 1247.
        assert_eq!(r.convert(1000, "EUR", 2, "USD", 2), Ok(1247));
        assert_eq!(r.convert(1000, "USD", 2, "XRP", 6), Err(RateError::NoRate("XRP".into())));
        assert_eq!(r.convert(u64::MAX, "USD", 9, "USD", 9), Ok((u128::from(u64::MAX) * 998 / 1000) as u64));
    }

    #[test]
    fn decimals_are_parsed_strictly() {
        assert!(Decimal::parse("1.0825").is_ok());
        assert!(Decimal::parse("000.5").is_ok());
        for bad in ["", ".5", "1.", "-1", "1e3", "1.2.3", "1234567890123456789"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        assert!(Rates::new(HashMap::new(), Decimal::parse("1").unwrap()).is_err());
    }
}
