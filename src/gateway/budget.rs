//! The memory budget for request bodies in flight (`[gateway] max_request_bytes_in_flight`):
//! one process-wide count of the request bytes the gateway holds, so that many large prompts at
//! once cannot take the machine's memory.
//!
//! A request reserves its body's size before reading it (the announced `Content-Length`, or
//! chunk by chunk when none is announced) and holds the reservation until its answer has been
//! handed to the client: the parsed request and the body sent upstream live that long, since a
//! failover re-sends them. When the budget is spent, a request waits up to [`WAIT_FOR_ROOM`] for
//! room (its body stays in the socket: TCP holds the client back), then its body is read and
//! dropped and it gets a 503 `gateway_busy` with `Retry-After` — every OpenAI SDK retries those.
//! (Answering before the body is read would make most clients see a broken pipe instead.)
//!
//! The budget counts bytes as received; the gateway holds about three times that at peak (the
//! received bytes while they are parsed, the parsed request, the body sent upstream), which is
//! what README's "Memory" section tells users. It does no I/O and knows nothing of HTTP.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// 10 s: long enough for a burst of large bodies to be read, parsed and sent on a few at a time
/// even on a busy machine (measured: 100 concurrent 15 MB requests), short enough that a client
/// whose request cannot fit hears so while it can still retry.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(10);

/// Reservations are counted in KiB: a tokio semaphore takes at most `u32::MAX` permits at once,
/// and KiB units allow bodies up to 4 TiB.
const UNIT: usize = 1024;

/// The shared budget; cheap to clone.
#[derive(Debug, Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    /// The budget in units, to resize it on a reload.
    size: Arc<std::sync::Mutex<usize>>,
}

/// Bytes of the budget held by one request; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

/// The budget had no room for a body within [`WAIT_FOR_ROOM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl Budget {
    pub fn new(bytes: usize) -> Budget {
        let size = units(bytes) as usize;
        Budget {
            permits: Arc::new(Semaphore::new(size)),
            size: Arc::new(std::sync::Mutex::new(size)),
        }
    }

    /// Changes the budget (a reload): growing frees room at once; shrinking takes the
    /// difference back as in-flight bodies finish, so no request is cut short.
    pub fn resize(&self, bytes: usize) {
        let new = units(bytes) as usize;
        let mut size = self.size.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *size, new);
        drop(size);
        if new > old {
            self.permits.add_permits(new - old);
        } else if new < old {
            let permits = self.permits.clone();
            let excess = u32::try_from(old - new).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(excess).await {
                    taken.forget();
                }
            });
        }
    }

    /// An empty reservation, grown with [`Budget::reserve`].
    pub fn empty() -> Reservation {
        Reservation { permit: None }
    }

    /// Adds `bytes` to `reservation`, waiting up to [`WAIT_FOR_ROOM`] for room.
    pub async fn reserve(&self, reservation: &mut Reservation, bytes: usize) -> Result<(), NoRoom> {
        let wanted = units(bytes);
        if wanted == 0 {
            return Ok(());
        }
        let acquire = self.permits.clone().acquire_many_owned(wanted);
        let permit = match tokio::time::timeout(WAIT_FOR_ROOM, acquire).await {
            Ok(Ok(permit)) => permit,
            // Timed out, or (never: the semaphore is not closed) closed.
            _ => return Err(NoRoom),
        };
        match &mut reservation.permit {
            Some(held) => held.merge(permit),
            None => reservation.permit = Some(permit),
        }
        Ok(())
    }

    /// Bytes of the budget free now (for tests and metrics).
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits() * UNIT
    }
}

impl Reservation {
    /// Bytes held (rounded up to KiB).
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_budget_waits_then_refuses_and_a_finished_body_makes_room() {
        let budget = Budget::new(10 * UNIT);
        let mut first = Budget::empty();
        budget.reserve(&mut first, 6 * UNIT).await.unwrap();
        budget.reserve(&mut first, 1).await.unwrap();
        assert_eq!(first.bytes(), 7 * UNIT);
        let mut second = Budget::empty();
        assert_eq!(budget.reserve(&mut second, 4 * UNIT).await, Err(NoRoom));
        drop(first);
        budget.reserve(&mut second, 4 * UNIT).await.unwrap();
        assert_eq!(budget.available_bytes(), 6 * UNIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_body_gets_room_freed_within_the_wait() {
        let budget = Budget::new(4 * UNIT);
        let mut first = Budget::empty();
        budget.reserve(&mut first, 4 * UNIT).await.unwrap();
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut second = Budget::empty();
                budget
                    .reserve(&mut second, 2 * UNIT)
                    .await
                    .map(|()| second.bytes())
            })
        };
        tokio::time::sleep(WAIT_FOR_ROOM / 2).await;
        drop(first);
        assert_eq!(waiting.await.unwrap(), Ok(2 * UNIT));
    }

    #[tokio::test(start_paused = true)]
    async fn resizing_grows_at_once_and_shrinks_as_bodies_finish() {
        let budget = Budget::new(4 * UNIT);
        let mut held = Budget::empty();
        budget.reserve(&mut held, 4 * UNIT).await.unwrap();
        budget.resize(6 * UNIT);
        assert_eq!(budget.available_bytes(), 2 * UNIT);
        budget.resize(2 * UNIT);
        drop(held);
        tokio::task::yield_now().await;
        assert_eq!(budget.available_bytes(), 2 * UNIT);
    }
}
