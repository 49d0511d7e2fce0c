//! Randomness that is not key material: nonces, jitter and shuffles.
//!
//! [`u64()`](fn@u64) and [`shuffle`] draw from the operating system's generator. If that generator fails (it practically never
//! does once the process runs), they fall back to a fixed value rather than stop the node: nothing here protects a
//! secret. Keys are generated elsewhere, and fail loudly instead. [`SplitMix64`] is a seeded generator for pure state
//! machines that must replay the same way in tests.

/// A random `u64` from the operating system (0 if the generator fails).
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => 0,
    }
}

/// A uniformly random value in `[-1, 1]` (0 if the generator fails), for jitter.
pub fn signed_unit() -> f64 {
    to_signed_unit(u64())
}

fn to_signed_unit(x: u64) -> f64 {
    // 53 random bits give every representable step of a double in [0, 1).
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Shuffles `items` in place (Fisher–Yates) with the operating system's generator.
pub fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = (u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// A small seeded generator (SplitMix64): deterministic for a given seed, so a state machine that draws its jitter
/// from it replays exactly in tests. Not for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next value in `[-1, 1]`.
    pub fn next_signed_unit(&mut self) -> f64 {
        to_signed_unit(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_generator_replays_and_stays_in_range() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(SplitMix64::new(8).next_u64(), xs[0], "another seed, another sequence");
        let mut c = SplitMix64::new(1);
        for _ in 0..10_000 {
            let r = c.next_signed_unit();
            assert!((-1.0..=1.0).contains(&r));
        }
        assert_eq!(to_signed_unit(0), -1.0);
        assert!(to_signed_unit(u64::MAX) < 1.0);
    }

    #[test]
    fn shuffling_keeps_every_element() {
        let mut v: Vec<u32> = (0..100).collect();
        shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        shuffle(&mut Vec::<u8>::new());
    }
}
