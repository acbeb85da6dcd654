//! Black-box tests of the Upzento Chat server: the real server, on a real PostgreSQL, driven
//! over HTTP. Each test gets a database of its own and a server on a free port.

mod chromium;
mod graph_stand_in;
mod helpers;
mod stand_ins;
mod website;

mod activity;
mod agents_and_teams;
mod audit;
mod auth;
mod bad_input;
mod browser;
mod console;
mod conversations;
mod domains;
mod event_feed;
mod event_store;
mod inbox;
mod operations;
mod projectors;
mod readme;
mod realtime;
mod tenant_isolation;
mod visitor;
mod whatsapp;
mod widgets;
