//! Runs commands: load the aggregate, let it decide, commit what it decided.
//!
//! Two commands on one aggregate at once both load the same version; the second commit hits
//! the events table's primary key and is retried on the fresh state, so concurrent writers
//! all succeed unless the aggregate is so hot that retries run out (DESIGN.md, the spike).
//!
//! A bus may remember the aggregates it commanded ([`CommandBus::remembering`]): commands on
//! one aggregate then take turns within the instance, and each decides on the state the
//! last commit left, without reading the store. The events table stays the judge: if another
//! instance wrote in between, the commit hits the primary key and the command is decided
//! again on the stored state. A refusal or a no-op decided on remembered state is decided
//! again on the stored state too, since those write nothing that could collide.
//! cqrs-es's `CqrsFramework` is not used: it answers nothing about where the events landed
//! and dispatches queries non-durably; projectors follow the global order instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use rand::Rng;
use serde_json::Value;
use tracing::instrument;

use crate::context::CommandContext;
use crate::store::{Committed, EventStore, IdempotencyRecord, Loaded, StoreError};

/// How many times a command is decided again after losing a race: enough for a few dozen
/// writers on one conversation at once, each wait short.
const MAX_ATTEMPTS: u32 = 20;
/// The longest pause between two attempts, in milliseconds.
const MAX_BACKOFF_MS: u64 = 50;

/// What a successful command did.
#[derive(Debug)]
pub struct Outcome<A: Aggregate> {
    /// The aggregate after the command, shared with the bus's memory of it.
    pub aggregate: Arc<A>,
    /// The aggregate's version after the command.
    pub version: usize,
    /// The global position reached; `None` when nothing was written.
    pub position: Option<i64>,
}

/// The result of a command sent with an idempotency key.
#[derive(Debug)]
pub enum Execution<A: Aggregate> {
    /// The command ran now.
    Ran(Outcome<A>),
    /// The same request had already run; here is its first answer.
    Replayed(Value),
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it.
    #[error(transparent)]
    Rejected(E),
    /// Other commands kept winning the race for this aggregate.
    #[error("the resource is being changed by too many requests at once; retry")]
    Contended,
    /// The idempotency key was used before for a different request.
    #[error("this idempotency key was already used for a different request")]
    IdempotencyMismatch,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Executes commands for one aggregate type.
pub struct CommandBus<A: Aggregate> {
    store: EventStore,
    services: A::Services,
    snapshot_every: usize,
    remembered: Option<Memory<A>>,
}

/// The aggregates a bus remembers, and how it weighs them.
struct Memory<A> {
    slots: moka::sync::Cache<String, Arc<Slot<A>>>,
    weigh: fn(&A) -> u32,
}

/// One aggregate's place in the bus's memory. Commands on it take turns on its lock, so
/// within an instance they never race each other to the store; the state, as the last
/// commit left it, is taken out while a command runs, so a failed one leaves nothing.
struct Slot<A> {
    state: tokio::sync::Mutex<Option<Remembered<A>>>,
    /// The state's size, for the cache's bound: read when the slot is (re)inserted.
    weight: AtomicU32,
}

impl<A> Default for Slot<A> {
    fn default() -> Self {
        Self {
            state: tokio::sync::Mutex::new(None),
            weight: AtomicU32::new(0),
        }
    }
}

struct Remembered<A> {
    aggregate: Arc<A>,
    version: usize,
    snapshot_version: usize,
}

impl<A> CommandBus<A>
where
    A: Aggregate + Clone + 'static,
    A::Command: Clone,
{
    /// A bus that snapshots the aggregate every `snapshot_every` events.
    pub fn new(store: EventStore, services: A::Services, snapshot_every: usize) -> Self {
        Self {
            store,
            services,
            snapshot_every,
            remembered: None,
        }
    }

    /// Remembers the aggregates this bus commands, up to `bytes` as `weigh` estimates them,
    /// each until it has been left alone for `idle`: a busy conversation's next command then
    /// needs no read and no replay, however long its history.
    pub fn remembering(mut self, bytes: u64, idle: Duration, weigh: fn(&A) -> u32) -> Self {
        self.remembered = Some(Memory {
            slots: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .time_to_idle(idle)
                .weigher(|id: &String, slot: &Arc<Slot<A>>| {
                    slot.weight
                        .load(Ordering::Relaxed)
                        .saturating_add(id.len() as u32)
                })
                .build(),
            weigh,
        });
        self
    }

    /// The store behind the bus.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Runs `command` on the aggregate `aggregate_id`, retrying on conflicts.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        match self.run(aggregate_id, command, context, None).await? {
            Execution::Ran(outcome) => Ok(outcome),
            Execution::Replayed(_) => unreachable!("no idempotency key was given"),
        }
    }

    /// Runs `command` at most once per idempotency key: a retry answers the first answer.
    pub async fn execute_idempotent(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        idempotency: IdempotencyRecord<'_>,
    ) -> Result<Execution<A>, CommandError<A::Error>> {
        if let Some(replay) = self.replay(context, &idempotency).await? {
            return Ok(replay);
        }
        match self
            .run(aggregate_id, command, context, Some(&idempotency))
            .await
        {
            // A concurrent request with the same key committed first: this one either lost
            // the key's insert or, deciding after it, was refused (a duplicate message id).
            // Either way the first answer is the answer.
            Err(
                error @ (CommandError::Store(StoreError::IdempotencyRace)
                | CommandError::Rejected(_)),
            ) => match self.replay(context, &idempotency).await? {
                Some(replayed) => Ok(replayed),
                None => Err(error),
            },
            other => other,
        }
    }

    async fn replay(
        &self,
        context: &CommandContext,
        idempotency: &IdempotencyRecord<'_>,
    ) -> Result<Option<Execution<A>>, CommandError<A::Error>> {
        let stored = self
            .store
            .idempotent_response(context.tenant_id, idempotency.key)
            .await?;
        match stored {
            Some((fingerprint, _)) if fingerprint != idempotency.fingerprint => {
                Err(CommandError::IdempotencyMismatch)
            }
            Some((_, response)) => Ok(Some(Execution::Replayed(response))),
            None => Ok(None),
        }
    }

    #[instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id), err(level = "debug"))]
    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        idempotency: Option<&IdempotencyRecord<'_>>,
    ) -> Result<Execution<A>, CommandError<A::Error>> {
        let slot = self.remembered.as_ref().map(|memory| {
            memory
                .slots
                .get_with(aggregate_id.to_owned(), || Arc::new(Slot::default()))
        });
        let mut turn = match &slot {
            Some(slot) => Some(slot.state.lock().await),
            None => None,
        };
        let mut outcome = None;
        for attempt in 1..=MAX_ATTEMPTS {
            let remembered = turn.as_mut().and_then(|state| state.take());
            let (loaded, events) = self.decide(aggregate_id, &command, remembered).await?;
            let committed = if events.is_empty() {
                None
            } else {
                match self
                    .store
                    .commit(
                        aggregate_id,
                        &loaded,
                        &events,
                        context,
                        self.snapshot_every,
                        idempotency,
                    )
                    .await
                {
                    Ok(committed) => {
                        metrics::counter!("upzento_commands_total", "aggregate" => A::TYPE)
                            .increment(1);
                        Some(committed)
                    }
                    Err(StoreError::Conflict) => {
                        metrics::counter!("upzento_command_conflicts_total", "aggregate" => A::TYPE)
                            .increment(1);
                        let ceiling = (2u64 << attempt.min(6)).min(MAX_BACKOFF_MS);
                        let backoff = rand::rng().random_range(0..ceiling);
                        tokio::time::sleep(Duration::from_millis(backoff)).await;
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                }
            };
            let (done, left) = self.settle(loaded, committed);
            if let Some(state) = turn.as_mut() {
                **state = Some(left);
            }
            outcome = Some(done);
            break;
        }
        drop(turn);
        if let (Some(memory), Some(slot), Some(done)) = (&self.remembered, slot, &outcome) {
            // Inserted again so that the cache weighs the state now in it.
            slot.weight
                .store((memory.weigh)(&done.aggregate), Ordering::Relaxed);
            memory.slots.insert(aggregate_id.to_owned(), slot);
        }
        outcome.map(Execution::Ran).ok_or(CommandError::Contended)
    }

    /// Lets the aggregate decide: on the remembered state when there is one and it decides
    /// to write, otherwise on the stored state. Answers the state with the events applied.
    async fn decide(
        &self,
        aggregate_id: &str,
        command: &A::Command,
        remembered: Option<Remembered<A>>,
    ) -> Result<(Loaded<A>, Vec<A::Event>), CommandError<A::Error>> {
        if let Some(entry) = remembered {
            // Shared only while the previous command's answer is still being written.
            let mut loaded = Loaded {
                aggregate: Arc::unwrap_or_clone(entry.aggregate),
                version: entry.version,
                snapshot_version: entry.snapshot_version,
            };
            if let Ok(events) = self.handle(&mut loaded.aggregate, command).await
                && !events.is_empty()
            {
                return Ok((loaded, events));
            }
        }
        let mut loaded = self.store.load::<A>(aggregate_id).await?;
        let events = self
            .handle(&mut loaded.aggregate, command)
            .await
            .map_err(CommandError::Rejected)?;
        Ok((loaded, events))
    }

    /// The events `aggregate` decides on for `command`, applied to it as they are written.
    async fn handle(
        &self,
        aggregate: &mut A,
        command: &A::Command,
    ) -> Result<Vec<A::Event>, A::Error> {
        let sink = EventSink::default();
        aggregate
            .handle(command.clone(), &self.services, &sink)
            .await?;
        Ok(sink.collect().await)
    }

    /// The outcome of a command that committed (or wrote nothing), and the state it leaves
    /// for the next command.
    fn settle(
        &self,
        loaded: Loaded<A>,
        committed: Option<Committed>,
    ) -> (Outcome<A>, Remembered<A>) {
        let version = committed.map_or(loaded.version, |c| c.version);
        let snapshot_version = if committed.is_some()
            && crate::store::snapshot_due(&loaded, version, self.snapshot_every)
        {
            version
        } else {
            loaded.snapshot_version
        };
        let aggregate = Arc::new(loaded.aggregate);
        let left = Remembered {
            aggregate: Arc::clone(&aggregate),
            version,
            snapshot_version,
        };
        let done = Outcome {
            aggregate,
            version,
            position: committed.map(|c| c.position),
        };
        (done, left)
    }
}
