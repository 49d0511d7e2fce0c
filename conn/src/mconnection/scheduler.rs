//! Which channel sends next: the one with the least recently-sent bytes per unit of priority.

/// Send-side bookkeeping per channel, in descriptor order.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    priority: Vec<u64>,
    recently_sent: Vec<u64>,
}

impl Scheduler {
    pub(crate) fn new(priorities: impl IntoIterator<Item = u32>) -> Self {
        let priority: Vec<u64> = priorities.into_iter().map(u64::from).collect();
        let recently_sent = vec![0; priority.len()];
        Scheduler { priority, recently_sent }
    }

    /// Among channels for which `has_data(i)` holds, the one with the least `recently_sent / priority`; the first
    /// in descriptor order wins ties.
    pub(crate) fn pick(&self, has_data: impl Fn(usize) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in (0..self.priority.len()).filter(|&i| has_data(i)) {
            best = match best {
                // a/pa < b/pb  ⇔  a·pb < b·pa (u128: no overflow, no floats).
                Some(b)
                    if u128::from(self.recently_sent[i]) * u128::from(self.priority[b])
                        >= u128::from(self.recently_sent[b]) * u128::from(self.priority[i]) =>
                {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        best
    }

    /// Records `bytes` written on channel `i`.
    pub(crate) fn record(&mut self, i: usize, bytes: usize) {
        self.recently_sent[i] = self.recently_sent[i].saturating_add(bytes as u64);
    }

    /// Decays every channel's history (called every 2 s): `recently_sent = floor(recently_sent × 0.8)`.
    pub(crate) fn decay(&mut self) {
        for r in &mut self.recently_sent {
            *r = *r / 5 * 4 + (*r % 5) * 4 / 5;
        }
    }

    pub(crate) fn recently_sent(&self, i: usize) -> u64 {
        self.recently_sent[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_follows_priority_under_contention() {
        let mut s = Scheduler::new([1, 5]);
        let mut sent = [0usize; 2];
        for round in 0..60_000 {
            let i = s.pick(|_| true).unwrap();
            s.record(i, 1046);
            sent[i] += 1046;
            if round % 2000 == 1999 {
                s.decay();
            }
        }
        let ratio = sent[1] as f64 / sent[0] as f64;
        assert!((ratio - 5.0).abs() < 0.05, "{ratio}");
    }

    #[test]
    fn idle_channels_are_skipped_and_ties_go_to_the_first() {
        let mut s = Scheduler::new([1, 1, 1]);
        assert_eq!(s.pick(|_| false), None);
        assert_eq!(s.pick(|_| true), Some(0));
        assert_eq!(s.pick(|i| i == 2), Some(2));
        s.record(0, 10);
        assert_eq!(s.pick(|_| true), Some(1));
    }

    #[test]
    fn decay_is_floor_of_four_fifths() {
        let mut s = Scheduler::new([1, 1, 1]);
        s.record(0, 1000);
        s.record(1, 7);
        s.record(2, u64::MAX as usize);
        s.decay();
        assert_eq!((s.recently_sent(0), s.recently_sent(1)), (800, 5));
        assert_eq!(s.recently_sent(2), (u64::MAX as u128 * 4 / 5) as u64);
    }
}
