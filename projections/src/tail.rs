//! The live tail of the global order: what WebSocket clients and the SSE feed follow.
//!
//! One task per server instance follows the gap-free reader from the moment the server
//! started and broadcasts each batch it reads. A subscriber first catches up from the store
//! after its own cursor, then takes the broadcast, skipping what it already has. Because the
//! readable events are always a prefix of the global order, anything not yet readable when
//! the catch-up ends is read by the tail later and broadcast in order: nothing is missed,
//! nothing is seen twice. A subscriber that falls too far behind the broadcast catches up
//! from the store again. Several instances each tail the same store, so an event written
//! through one reaches clients of every other (the `NOTIFY` only wakes them).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::Stream;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::notifications::Notifications;
use crate::reader::{Cursor, StoredEvent, head, read_after, read_tenant_after};

/// Events read per query, by the tail and by a subscriber's catch-up.
const BATCH: i64 = 500;
/// Broadcast batches a slow subscriber may fall behind before it catches up from the store.
const BACKLOG: usize = 256;
/// How long the tail waits for a notification before looking anyway: the transactions that
/// hold readers back are not always ours, and their end notifies nobody.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How soon the tail looks again after a notification that found nothing readable yet (an
/// older transaction was still running): the wait is short, and it is on the latency path.
const PENDING_POLL: Duration = Duration::from_millis(5);
/// How many quick looks a notification buys before the tail falls back to [`IDLE_POLL`]:
/// a long transaction elsewhere must not turn the tail into a busy loop.
const PENDING_LOOKS: u32 = 100;

/// One event as every subscriber shares it.
pub type SharedEvent = Arc<TailEvent>;

/// An event on the tail, with a slot for a rendering that every subscriber of one kind
/// would otherwise repeat: the first to render it (say, the JSON every agent connection of a
/// tenant sends) leaves it there for the others.
#[derive(Debug)]
pub struct TailEvent {
    event: StoredEvent,
    /// The shared rendering, once someone made it.
    pub rendered: OnceLock<Option<Arc<str>>>,
}

impl From<StoredEvent> for TailEvent {
    fn from(event: StoredEvent) -> Self {
        Self {
            event,
            rendered: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for TailEvent {
    type Target = StoredEvent;

    fn deref(&self) -> &StoredEvent {
        &self.event
    }
}

/// A handle on the instance's tail; cheap to clone. The tail stops when the last handle goes.
#[derive(Clone)]
pub struct Tail {
    pool: PgPool,
    batches: broadcast::Sender<Arc<[SharedEvent]>>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Tail {
    /// Starts following the store from its current head, woken by the instance's
    /// `notifications`.
    pub fn start(pool: PgPool, notifications: &Notifications) -> Self {
        let (batches, _) = broadcast::channel(BACKLOG);
        let task = tokio::spawn(follow(
            pool.clone(),
            batches.clone(),
            notifications.appended(),
        ));
        Self {
            pool,
            batches,
            _task: Arc::new(AbortOnDrop(task.abort_handle())),
        }
    }

    /// Every event of `tenant_id` after `after`, in global order, exactly once: first those
    /// already stored, then live ones as they commit. Ends only when the tail stops; a
    /// database error is yielded and the stream may be polled again to retry.
    pub fn subscribe(
        &self,
        tenant_id: Uuid,
        after: Cursor,
    ) -> impl Stream<Item = Result<SharedEvent, sqlx::Error>> + Send + use<> {
        let subscription = Subscription {
            pool: self.pool.clone(),
            batches: self.batches.subscribe(),
            tenant_id,
            cursor: after,
            ready: VecDeque::new(),
            catching_up: true,
        };
        futures::stream::unfold(subscription, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
    }
}

struct Subscription {
    pool: PgPool,
    batches: broadcast::Receiver<Arc<[SharedEvent]>>,
    tenant_id: Uuid,
    cursor: Cursor,
    ready: VecDeque<SharedEvent>,
    catching_up: bool,
}

impl Subscription {
    async fn next(&mut self) -> Option<Result<SharedEvent, sqlx::Error>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.cursor = event.cursor();
                return Some(Ok(event));
            }
            if self.catching_up {
                match read_tenant_after(&self.pool, self.tenant_id, self.cursor, BATCH).await {
                    Ok(events) if events.is_empty() => self.catching_up = false,
                    Ok(events) => self
                        .ready
                        .extend(events.into_iter().map(|e| Arc::new(e.into()))),
                    Err(error) => return Some(Err(error)),
                }
                continue;
            }
            match self.batches.recv().await {
                Ok(batch) => self.ready.extend(
                    batch
                        .iter()
                        .filter(|e| e.tenant_id == self.tenant_id && e.cursor() > self.cursor)
                        .cloned(),
                ),
                Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The tail's loop: read what became readable, broadcast it, wait for the next commit.
async fn follow(
    pool: PgPool,
    batches: broadcast::Sender<Arc<[SharedEvent]>>,
    mut appended: watch::Receiver<()>,
) {
    let mut cursor = None;
    let mut pending = 0;
    loop {
        if let Err(error) = step(&pool, &batches, &mut cursor, &mut appended, &mut pending).await {
            tracing::warn!(error = %error, "event tail interrupted; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn step(
    pool: &PgPool,
    batches: &broadcast::Sender<Arc<[SharedEvent]>>,
    cursor: &mut Option<Cursor>,
    appended: &mut watch::Receiver<()>,
    pending: &mut u32,
) -> Result<(), sqlx::Error> {
    let from = match *cursor {
        Some(from) => from,
        None => *cursor.insert(head(pool).await?),
    };
    let events = read_after(pool, from, BATCH).await?;
    if let Some(last) = events.last() {
        *cursor = Some(last.cursor());
        *pending = 0;
        // No receiver is not an error: nobody is connected right now.
        let _ = batches.send(events.into_iter().map(|e| Arc::new(e.into())).collect());
        return Ok(());
    }
    let wait = if *pending > 0 {
        *pending -= 1;
        PENDING_POLL
    } else {
        IDLE_POLL
    };
    match tokio::time::timeout(wait, appended.changed()).await {
        Ok(Ok(())) => *pending = PENDING_LOOKS,
        // The instance's listener is gone: looking every poll is all there is.
        Ok(Err(_closed)) => tokio::time::sleep(wait).await,
        Err(_elapsed) => {}
    }
    Ok(())
}
