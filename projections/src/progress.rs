//! Word that a projector has moved on, for whoever waits for it to reach a position
//! (read-your-writes, `?min_position=`). Every batch a projector commits sends a
//! notification on [`CHANNEL`] (delivered at commit, to every server instance, whichever
//! one leads the projector); each server listens and wakes its waiters, which then check
//! the checkpoint. Waiters also look again on their own after a short while, so a missed
//! notification (a listener reconnecting) costs time, never an answer.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// The channel projector commits notify.
pub(crate) const CHANNEL: &str = "upzento_projected";

/// Wakes the tasks waiting for a projector of this instance's database to move on.
#[derive(Default)]
pub struct Progress {
    advanced: Notify,
}

impl Progress {
    /// Listens for projector commits on `pool`'s database for as long as the process runs.
    pub fn start(pool: PgPool) -> Arc<Self> {
        let progress = Arc::new(Self::default());
        tokio::spawn(Arc::clone(&progress).listen(pool));
        progress
    }

    /// Completes at the next projector commit after it was created (or
    /// [`enable`d](Notified::enable)): create it, then check, then await it, and nothing is
    /// missed in between.
    pub fn advanced(&self) -> Notified<'_> {
        self.advanced.notified()
    }

    async fn listen(self: Arc<Self>, pool: PgPool) {
        loop {
            if let Err(error) = self.follow(&pool).await {
                tracing::warn!(error = %error, "projector progress listener failed; reconnecting");
            }
            // Whatever happened while the listener was down is seen by a fresh check.
            self.advanced.notify_waiters();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn follow(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        loop {
            listener.recv().await?;
            self.advanced.notify_waiters();
        }
    }
}
