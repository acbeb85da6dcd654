//! Runs commands: load the aggregate, let it decide, commit what it decided.
//!
//! Two commands on one aggregate at once both load the same version; the second commit hits
//! the events table's primary key and is retried on the fresh state, so concurrent writers
//! all succeed unless the aggregate is so hot that retries run out (DESIGN.md, the spike).
//! cqrs-es's `CqrsFramework` is not used: it answers nothing about where the events landed
//! and dispatches queries non-durably; projectors follow the global order instead.

use std::time::Duration;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use rand::Rng;
use serde_json::Value;
use tracing::instrument;

use crate::context::CommandContext;
use crate::store::{Committed, EventStore, IdempotencyRecord, StoreError};

/// How many times a command is decided again after losing a race: enough for a few dozen
/// writers on one conversation at once, each wait short.
const MAX_ATTEMPTS: u32 = 20;
/// The longest pause between two attempts, in milliseconds.
const MAX_BACKOFF_MS: u64 = 50;

/// What a successful command did.
#[derive(Debug)]
pub struct Outcome<A: Aggregate> {
    /// The aggregate after the command.
    pub aggregate: A,
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
}

impl<A> CommandBus<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    /// A bus that snapshots the aggregate every `snapshot_every` events.
    pub fn new(store: EventStore, services: A::Services, snapshot_every: usize) -> Self {
        Self {
            store,
            services,
            snapshot_every,
        }
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
        for attempt in 1..=MAX_ATTEMPTS {
            let mut loaded = self.store.load::<A>(aggregate_id).await?;
            let sink = EventSink::default();
            loaded
                .aggregate
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Execution::Ran(Outcome {
                    version: loaded.version,
                    aggregate: loaded.aggregate,
                    position: None,
                }));
            }
            let committed = self
                .store
                .commit(
                    aggregate_id,
                    &loaded,
                    &events,
                    context,
                    self.snapshot_every,
                    idempotency,
                )
                .await;
            match committed {
                Ok(Committed { version, position }) => {
                    metrics::counter!("upzento_commands_total", "aggregate" => A::TYPE)
                        .increment(1);
                    return Ok(Execution::Ran(Outcome {
                        aggregate: loaded.aggregate,
                        version,
                        position: Some(position),
                    }));
                }
                Err(StoreError::Conflict) => {
                    metrics::counter!("upzento_command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    let ceiling = (2u64 << attempt.min(6)).min(MAX_BACKOFF_MS);
                    let backoff = rand::rng().random_range(0..ceiling);
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(CommandError::Contended)
    }
}
