//! The instance's one `LISTEN` connection, for the two kinds of commit it waits for:
//!
//! - events appended (the store's trigger notifies [`EVENTS`]), which wake what follows the
//!   global order here: the projectors and the live tail;
//! - projector batches (each batch notifies [`PROJECTED`], whichever instance leads the
//!   projector), which wake read-your-writes waits (`?min_position=`).
//!
//! PostgreSQL signals every listening connection at every commit that notifies, and each
//! one wakes, reads the notification queue and sends the notification on. Under a stream of
//! appends that was a signal and a wakeup per follower per command; one connection per
//! instance pays it once. Whoever waits also looks again on its own after a short while, so a
//! missed notification (the connection being set up again) costs time, never an event.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, watch};

/// The channel the events table's trigger notifies when a transaction that appended commits.
pub(crate) const EVENTS: &str = "upzento_events";
/// The channel projector batches notify when they commit.
pub(crate) const PROJECTED: &str = "upzento_projected";

/// Wakes this instance's followers of the events and its read-your-writes waiters.
pub struct Notifications {
    appended: watch::Sender<()>,
    projected: Notify,
}

impl Notifications {
    /// Listens on `pool`'s database for as long as the process runs.
    pub fn start(pool: PgPool) -> Arc<Self> {
        let notifications = Arc::new(Self {
            appended: watch::Sender::new(()),
            projected: Notify::new(),
        });
        tokio::spawn(Arc::clone(&notifications).listen(pool));
        notifications
    }

    /// Sees a change after each commit that appended events (several commits between two
    /// looks are one change).
    pub fn appended(&self) -> watch::Receiver<()> {
        self.appended.subscribe()
    }

    /// Completes at the next projector commit after it was created (or
    /// [`enable`d](Notified::enable)): create it, then check, then await it, and nothing is
    /// missed in between.
    pub fn projected(&self) -> Notified<'_> {
        self.projected.notified()
    }

    async fn listen(self: Arc<Self>, pool: PgPool) {
        loop {
            if let Err(error) = self.follow(&pool).await {
                tracing::warn!(error = %error, "notification listener failed; reconnecting");
            }
            // Whatever happened while the listener was down is seen by a fresh look.
            self.wake_all();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all([EVENTS, PROJECTED]).await?;
        // Commits made before the listener was up are seen by a fresh look too.
        self.wake_all();
        loop {
            let notification = listener.recv().await?;
            if notification.channel() == EVENTS {
                self.appended.send_replace(());
            } else {
                self.projected.notify_waiters();
            }
        }
    }

    fn wake_all(&self) {
        self.appended.send_replace(());
        self.projected.notify_waiters();
    }
}
