//! Open packets under IDs: a slab (slots reused most recent first, so a busy connector keeps touching the same
//! few cache lines) whose IDs also carry a 39-bit sequence number, so an ID comes back only after 2^39 more (about
//! a month at 200,000 a second, against packets open at most 30 s) and a stale or forged ID finds nothing even when
//! its slot has been reused.

use slab::Slab;

/// Bits of an ID that name the slot: at most 2^24 values open at once.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Bits of the sequence number: 39, so that IDs stay below 2^63 (the values above are free for fixed IDs).
const SEQ_MASK: u64 = (1 << 39) - 1;

/// Values under IDs that are unique within a run.
#[derive(Debug)]
pub(crate) struct Slots<V> {
    slab: Slab<(u64, V)>,
    next_seq: u64,
}

impl<V> Slots<V> {
    /// An empty set whose first ID carries sequence number `first_seq` (taken modulo 2^39).
    pub(crate) fn new(first_seq: u64) -> Slots<V> {
        Slots { slab: Slab::new(), next_seq: first_seq & SEQ_MASK }
    }

    /// Stores `value` and returns its ID, or gives it back when 2^24 values are already open.
    pub(crate) fn insert(&mut self, value: V) -> Result<u64, V> {
        let entry = self.slab.vacant_entry();
        let slot = entry.key() as u64;
        if slot > SLOT_MASK {
            return Err(value);
        }
        let id = (self.next_seq << SLOT_BITS) | slot;
        self.next_seq = (self.next_seq + 1) & SEQ_MASK;
        entry.insert((id, value));
        Ok(id)
    }

    fn slot(id: u64) -> usize {
        (id & SLOT_MASK) as usize
    }

    /// The value under `id`, if it is open.
    pub(crate) fn get(&self, id: u64) -> Option<&V> {
        self.slab.get(Self::slot(id)).filter(|(i, _)| *i == id).map(|(_, v)| v)
    }

    /// The value under `id`, if it is open, to change.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut V> {
        self.slab.get_mut(Self::slot(id)).filter(|(i, _)| *i == id).map(|(_, v)| v)
    }

    /// Takes the value under `id` out, if it is open.
    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let slot = Self::slot(id);
        if self.slab.get(slot).is_some_and(|(i, _)| *i == id) {
            self.slab.try_remove(slot).map(|(_, v)| v)
        } else {
            None
        }
    }

    /// Values open.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Takes every open value out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = V> + '_ {
        self.slab.drain().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_its_old_id() {
        let mut s = Slots::new(7);
        let a = s.insert("a").unwrap();
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b").unwrap();
        assert_eq!(Slots::<&str>::slot(a), Slots::<&str>::slot(b), "the freed slot is reused first");
        assert_ne!(a, b);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
    }

    #[test]
    fn ids_stay_below_two_to_the_63_even_when_the_sequence_wraps() {
        let mut s = Slots::new(u64::MAX);
        let last = s.insert(1).unwrap();
        let first = s.insert(2).unwrap();
        assert!(last < 1 << 63 && first < 1 << 63);
        assert_eq!(first >> SLOT_BITS, 0, "the sequence wraps to 0");
        assert_eq!((s.get(last), s.get(first)), (Some(&1), Some(&2)));
    }

    #[test]
    fn ids_that_were_never_given_find_nothing() {
        let mut s = Slots::new(0);
        let id = s.insert(()).unwrap();
        for forged in [id + 1, id ^ (1 << 30), u64::MAX, 0x00ff_ffff] {
            assert_eq!(s.get(forged), None, "{forged:#x}");
            assert_eq!(s.remove(forged), None);
        }
        assert_eq!(s.len(), 1);
    }
}
