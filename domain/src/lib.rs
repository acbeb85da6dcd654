//! Upzento Chat's domain: the aggregates that turn commands into events.
//!
//! Everything here is pure: no I/O, no database, no HTTP. What an aggregate needs from the
//! outside world (checking a domain's proof, asking whether a domain is verified) is a trait
//! here and a real implementation in the `commands` crate.
//!
//! - [`conversation`]: a thread with one contact, on one channel, answered by a team.
//! - [`widget`]: the chat widget a tenant embeds on its verified domains.
//! - [`web_domain`]: a web domain a tenant proves it owns.
//! - [`ids`], [`actor`], [`text`]: the small value types the aggregates share.
//! - [`rejection`]: what every refusal says about itself, so the API can answer it.
#![forbid(unsafe_code)]

pub mod actor;
pub mod conversation;
pub mod ids;
pub mod rejection;
pub mod text;
pub mod web_domain;
pub mod widget;
