//! The memory gate: a bound, in bytes of response body, on the pages in memory at once, shared
//! by every request that takes it. A request takes a permit weighted by its body's size once a
//! successful response's headers have arrived, before reading the body, and hands it to the
//! caller, who holds it until everything made from that body has been encoded (or, for a
//! dataset that keeps decoded records itself, until the body is decoded). Requests waiting for
//! a response take nothing, so concurrency still hides latency; only the memory is bounded.
//!
//! A body's weight is its `Content-Length` when the response has one. A body of unknown length
//! (chunked) takes the whole gate while it is read, then gives back all but the bytes it read:
//! growing a permit chunk by chunk would mean waiting for more while holding some, and two bodies
//! doing that could each wait for the other's bytes forever. A body larger than the bound takes
//! the whole gate (it is read alone, as every body was when the gate counted pages). So the
//! bodies held at once total at most the bound, or one body when it is larger.
//!
//! Several pages that fit are decoded at once, on different cores: the gate no longer
//! serializes decoding when the bound allows more than one page.

use std::sync::Arc;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// See the module docs.
#[derive(Debug)]
pub struct MemoryGate {
    /// One semaphore permit per byte of the bound.
    permits: Arc<Semaphore>,
    bound: u32,
    /// Responses waiting for their permit (see [`MemoryGate::watch_waiting`]).
    waiting: watch::Sender<usize>,
}

/// Decrements the waiting count however the wait ends (granted or cancelled).
struct Waiting<'a>(&'a watch::Sender<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl MemoryGate {
    /// A gate letting bodies totalling `bound` bytes (at least one byte) in at once.
    pub fn new(bound: u32) -> MemoryGate {
        let bound = bound.max(1);
        MemoryGate {
            permits: Arc::new(Semaphore::new(bound as usize)),
            bound,
            waiting: watch::Sender::new(0),
        }
    }

    /// The bound, in bytes.
    pub fn bound(&self) -> u32 {
        self.bound
    }

    /// What a body of `bytes` takes of the gate: its size, at least one byte and at most the
    /// whole gate.
    pub fn weight_of(&self, bytes: u64) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.bound)
    }

    /// Wait for the whole gate (a body of unknown size); it is returned to the gate when
    /// dropped, or in part through [`MemoryGate::shrink`].
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.acquire_weight(self.bound).await
    }

    /// Wait for a permit of a body of `bytes` (see [`MemoryGate::weight_of`]); it is returned to
    /// the gate when dropped.
    pub async fn acquire_bytes(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        self.acquire_weight(self.weight_of(bytes)).await
    }

    /// The permit of a body whose `Content-Length` is `length`: [`MemoryGate::acquire_bytes`]
    /// when it is known, else the whole gate, to [`MemoryGate::shrink`] once the body is read.
    pub async fn acquire_body(&self, length: Option<u64>) -> Option<OwnedSemaphorePermit> {
        match length {
            Some(bytes) => self.acquire_bytes(bytes).await,
            None => self.acquire().await,
        }
    }

    async fn acquire_weight(&self, weight: u32) -> Option<OwnedSemaphorePermit> {
        self.waiting.send_modify(|n| *n += 1);
        let _waiting = Waiting(&self.waiting);
        // `acquire_many_owned` fails only on a closed semaphore; nothing closes a gate's, and
        // going on without a permit would merely use more memory.
        Arc::clone(&self.permits)
            .acquire_many_owned(weight)
            .await
            .ok()
    }

    /// Gives back what `permit` holds beyond the weight of a body of `bytes` (a body of unknown
    /// length, once read).
    pub fn shrink(&self, permit: &mut OwnedSemaphorePermit, bytes: u64) {
        let keep = self.weight_of(bytes) as usize;
        drop(permit.split(permit.num_permits().saturating_sub(keep)));
    }

    /// Responses whose headers have arrived and that wait for a permit to read their body.
    pub fn waiting(&self) -> usize {
        *self.waiting.borrow()
    }

    /// The number of waiting responses, as it changes: an event to await instead of polling
    /// [`MemoryGate::waiting`].
    pub fn watch_waiting(&self) -> watch::Receiver<usize> {
        self.waiting.subscribe()
    }

    /// Bytes of the bound neither held nor set aside: free bytes go to the body first in line
    /// until it has its whole weight (so small bodies cannot starve a large one), and count as
    /// taken meanwhile.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Whether no permit is held.
    pub fn is_idle(&self) -> bool {
        self.available() == self.bound as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_are_counted_until_granted_or_cancelled() {
        let gate = MemoryGate::new(1);
        let held = gate.acquire().await.expect("permit");
        assert_eq!(gate.available(), 0);
        let mut second = Box::pin(gate.acquire());
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert_eq!(gate.waiting(), 1);
        drop(held);
        let granted = second.await.expect("permit after release");
        assert_eq!(gate.waiting(), 0);
        let mut third = Box::pin(gate.acquire());
        assert!(futures::poll!(third.as_mut()).is_pending());
        assert_eq!(gate.waiting(), 1);
        drop(third);
        assert_eq!(gate.waiting(), 0, "a cancelled wait is no longer counted");
        drop(granted);
        assert_eq!(gate.available(), 1);
        assert!(gate.is_idle());
    }

    #[tokio::test]
    async fn bodies_that_fit_the_bound_are_held_together_and_one_that_does_not_waits() {
        let gate = MemoryGate::new(1000);
        let a = gate.acquire_bytes(400).await.expect("permit");
        let b = gate
            .acquire_bytes(500)
            .await
            .expect("both fit: 900 of 1000 bytes");
        assert_eq!(gate.available(), 100);
        let mut c = Box::pin(gate.acquire_bytes(200));
        assert!(futures::poll!(c.as_mut()).is_pending(), "1100 > 1000");
        assert_eq!(gate.waiting(), 1);
        drop(a);
        let c = c.await.expect("fits once 400 bytes are back");
        assert_eq!(gate.available(), 300);
        drop((b, c));
        assert!(gate.is_idle());
    }

    #[tokio::test]
    async fn a_body_larger_than_the_bound_takes_the_whole_gate_alone() {
        let gate = MemoryGate::new(1000);
        assert_eq!(gate.weight_of(5_000_000_000), 1000);
        assert_eq!(gate.weight_of(0), 1, "an empty body still takes a byte");
        let small = gate.acquire_bytes(10).await.expect("permit");
        let mut large = Box::pin(gate.acquire_bytes(4000));
        assert!(futures::poll!(large.as_mut()).is_pending());
        drop(small);
        let large = large.await.expect("alone");
        assert_eq!(gate.available(), 0);
        drop(large);
        assert!(gate.is_idle());
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_keeps_only_what_it_read() {
        let gate = MemoryGate::new(1000);
        let mut whole = gate.acquire().await.expect("the whole gate");
        assert_eq!(gate.available(), 0);
        gate.shrink(&mut whole, 300);
        assert_eq!(gate.available(), 700);
        gate.shrink(&mut whole, 5000);
        assert_eq!(gate.available(), 700, "shrinking never grows a permit");
        drop(whole);
        assert!(gate.is_idle());
    }

    #[tokio::test]
    async fn the_waiting_count_is_an_event() {
        let gate = Arc::new(MemoryGate::new(10));
        let mut waiting = gate.watch_waiting();
        let held = gate.acquire().await.expect("permit");
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.acquire_bytes(5).await.is_some() })
        };
        waiting.wait_for(|n| *n == 1).await.expect("gate alive");
        drop(held);
        assert!(waiter.await.expect("task"));
        waiting.wait_for(|n| *n == 0).await.expect("gate alive");
    }
}
