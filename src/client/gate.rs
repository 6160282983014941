//! The memory gate: a count of response bodies that may be in memory at once, shared by every
//! request that takes it. A request takes a permit once a successful response's headers have
//! arrived, before reading its body, and hands it to the caller, who holds it until everything
//! made from that body has been encoded. Requests waiting for a response take nothing, so
//! concurrency still hides latency; only the memory is bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// See the module docs.
#[derive(Debug)]
pub struct MemoryGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Decrements the waiting count however the wait ends (granted or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MemoryGate {
    /// A gate letting `permits` bodies (at least one) in at once.
    pub fn new(permits: usize) -> MemoryGate {
        MemoryGate {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Wait for a permit; it is returned to the gate when dropped.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        // `acquire_owned` fails only on a closed semaphore; nothing closes a gate's, and going
        // on without a permit would merely use more memory.
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// Responses whose headers have arrived and that wait for a permit to read their body.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Permits not currently held.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
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
    }
}
