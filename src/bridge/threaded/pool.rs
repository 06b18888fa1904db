//! The spare batches a bridge's worker gives back for the producer to fill
//! again.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::Spare;

/// A value alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Spare batch Vecs, returned by the worker (and by the drop policies) for
/// the producer to fill again: a stack, or for flat batches a queue.
///
/// A stack hands back the Vec returned last, so when the worker keeps up
/// two batches alternate and the others rest: for slots (a bus `Record`
/// owns three buffers) this keeps the records in use few and close
/// together. Flat batches rotate instead: the producer writes faster into
/// a buffer the worker read long ago (it has left the worker core's cache)
/// than into the one it has just read, so the producer makes all its
/// spares before it reuses any and then takes the one returned longest
/// ago. Both choices are measured by the bus pipeline of
/// `benches/bridges.rs`.
///
/// Counting: the pool keeps at most `capacity + 2` spares, so at most
/// `capacity + 3` batches exist, counting the one the producer fills.
pub(super) struct Pool<T> {
    pub(super) spares: Mutex<VecDeque<Spare<T>>>,
    /// Hand out the spare returned longest ago (a queue: [`Flattened`]),
    /// or the one returned last (a stack: the other modes).
    queue: bool,
    /// Spares kept at most; more are freed.
    max: usize,
}

impl<T> Pool<T> {
    pub(super) fn new(max: usize, queue: bool) -> Pool<T> {
        Pool {
            spares: Mutex::new(VecDeque::with_capacity(max)),
            queue,
            max,
        }
    }

    /// The spare returned longest ago (a queue) or last (a stack), if any.
    #[inline]
    pub(super) fn take(&self) -> Option<Spare<T>> {
        // A panic never happens while the lock is held (push and pop do
        // not panic once the deque has its capacity), so poisoning is
        // impossible; if it were not, the deque would still be whole.
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        if self.queue {
            spares.pop_front()
        } else {
            spares.pop_back()
        }
    }

    /// Keeps `items` for reuse, or gives it back to be freed (outside the
    /// lock) if there are spares enough.
    #[inline]
    pub(super) fn put(&self, items: Spare<T>) -> Option<Spare<T>> {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() < self.max {
            spares.push_back(items);
            None
        } else {
            Some(items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::flat::FlatBuf;

    /// A pool of at most 2: puts 1, 2 and 3 (3 is refused: full), takes
    /// one, puts 4, and takes until it is empty: what it took, in order.
    fn pool_takes(queue: bool) -> Vec<u32> {
        let pool = Pool::new(2, queue);
        let spare = |n: u32| (vec![n], FlatBuf::new());
        assert!(pool.put(spare(1)).is_none());
        assert!(pool.put(spare(2)).is_none());
        assert_eq!(pool.put(spare(3)), Some(spare(3)));
        let mut took = vec![pool.take().unwrap().0[0]];
        assert!(pool.put(spare(4)).is_none());
        while let Some((items, _)) = pool.take() {
            took.push(items[0]);
        }
        took
    }

    #[test]
    fn the_pool_gives_back_the_vec_returned_last_or_first_and_keeps_at_most_max() {
        assert_eq!(pool_takes(false), [2, 4, 1], "a stack");
        assert_eq!(pool_takes(true), [1, 2, 4], "a queue");
    }

    /// The batches a producer fills in turn when the worker keeps up: the
    /// pool starts with `spares` batches (numbered 0..), the producer
    /// takes one, fills and sends it, and the worker returns the batch it
    /// had before (one batch is always in flight).
    fn batches_filled(queue: bool, spares: u32, rounds: usize) -> Vec<u32> {
        let pool = Pool::new(spares as usize + 1, queue);
        for n in 0..spares {
            assert!(pool.put((vec![n], FlatBuf::new())).is_none());
        }
        let mut in_flight = None;
        let mut filled = Vec::new();
        for _ in 0..rounds {
            let batch = pool.take().expect("a spare");
            filled.push(batch.0[0]);
            if let Some(done) = in_flight.replace(batch) {
                assert!(pool.put(done).is_none());
            }
        }
        filled
    }

    #[test]
    fn a_worker_that_keeps_up_gets_the_same_two_batches_back_from_a_stack() {
        assert_eq!(
            batches_filled(false, 5, 8),
            [4, 3, 4, 3, 4, 3, 4, 3],
            "the last two returned alternate"
        );
    }

    #[test]
    fn flat_batches_rotate_through_every_spare_from_a_queue() {
        assert_eq!(
            batches_filled(true, 5, 12),
            [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1],
            "each batch rests while all the others are used"
        );
    }
}
