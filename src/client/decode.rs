//! Where a successful response's body is decoded: on the task that sent the request
//! ([`Inline`], every caller's default), or on tokio's blocking pool ([`Blocking`]) so that the
//! decoding of one page runs on another core than the task that normalizes and encodes the
//! pages decoded before it (Call Details: a day's fetching and its writing are one task). A
//! backfill runs each day on its own task, so its days use every core either way: decoding
//! Call Details inline measured the same on the 7-day backfill (CPU 0.95 → 0.94 s, wall 0.64
//! → 0.62 s, `RUNS=9 benches/call_details_cores.sh`), while a daemon's one day still gains
//! from the overlap.
//!
//! Either way the body and its page-gate permit travel together: the permit is released only
//! once decoding has finished, even when the request is cancelled meanwhile (a blocking task
//! cannot be stopped), so the gate's bound holds.

use std::future::Future;

use tokio::sync::OwnedSemaphorePermit;

use crate::sources::DecodeError;

/// A decoded value, or why the body could not be decoded, with the body's permit.
pub(super) type Decoded<T> = (Result<T, DecodeError>, Option<OwnedSemaphorePermit>);

/// Turns a successful body into the caller's value.
pub(super) trait BodyDecoder<T> {
    fn decode(
        &mut self,
        body: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> impl Future<Output = Decoded<T>>;
}

/// Decodes on the calling task.
pub(super) struct Inline<F>(pub F);

impl<T, F> BodyDecoder<T> for Inline<F>
where
    F: FnMut(&[u8]) -> Result<T, DecodeError>,
{
    fn decode(
        &mut self,
        body: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> impl Future<Output = Decoded<T>> {
        let value = (self.0)(&body);
        drop(body);
        std::future::ready((value, permit))
    }
}

/// Decodes on tokio's blocking pool.
pub(super) struct Blocking<F>(pub F);

impl<T, F> BodyDecoder<T> for Blocking<F>
where
    F: Fn(&[u8]) -> Result<T, DecodeError> + Clone + Send + 'static,
    T: Send + 'static,
{
    fn decode(
        &mut self,
        body: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> impl Future<Output = Decoded<T>> {
        let decode = self.0.clone();
        let task = tokio::task::spawn_blocking(move || (decode(&body), permit));
        async move {
            match task.await {
                Ok(decoded) => decoded,
                // A panicking decoder is a bug: let it surface as it would inline.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels a blocking task.
                Err(_) => (
                    Err(DecodeError {
                        api: "response",
                        reason: "the runtime shut down while the body was being decoded"
                            .to_string(),
                    }),
                    None,
                ),
            }
        }
    }
}
