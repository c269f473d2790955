//! End-to-end tests: the real `homevisit` binary on a real port, spoken to over real TLS by
//! field devices built on sync-core, exactly as phones use it. (Built as a test target of the
//! server package so that Cargo hands it the path of the binary.)

mod access;
mod alerts;
mod auth;
mod durability;
mod field;
mod first_sync;
mod forgery;
mod harness;
mod http;
mod inflation;
mod ops;
// The server's integration tests' PostgreSQL fixture, shared rather than written twice.
#[path = "../../server/tests/it/pg.rs"]
mod pg;
mod phone;
mod photos;
mod reports;
mod roster;
mod sync;
mod sync_access;
