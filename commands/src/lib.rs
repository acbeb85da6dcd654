//! The write side of Upzento Chat.
//!
//! - [`store`]: the PostgreSQL event store (postgres-es's tables plus the global order),
//!   with correct snapshots and idempotency records written in the command's transaction.
//! - [`bus`]: runs a command against an aggregate: load, decide, commit, retry on conflict.
//! - [`context`]: who issued a command and why, recorded on every event.
//! - [`proofs`]: the real DNS and HTTP checks behind domain verification.
//! - [`directory`]: answers the widget's question "is this a verified domain of the tenant?".
//! - [`tenancy`]: tenants, agents, tokens and teams (plain tables).
//! - [`sign_in`]: agents' passwords (Argon2id), sign-in and invitations.
//! - [`sessions`]: agents' browser sessions, stored server-side by the hash of their cookie.
//! - [`whatsapp`]: the WhatsApp channel: channels, webhook ingestion, the outbox sender.
#![forbid(unsafe_code)]

pub mod bus;
pub mod context;
pub mod directory;
pub mod proofs;
pub mod sessions;
pub mod sign_in;
pub mod store;
pub mod tenancy;
pub mod whatsapp;

/// The migrations of the whole service, the event store's tables included.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
