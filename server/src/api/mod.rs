//! The HTTP layer: handlers, extractors and the mapping of errors to responses.

pub mod auth;
pub mod blobs;
pub mod body;
pub mod caller;
pub mod children;
pub mod error;
pub mod health;
pub mod openapi;
pub mod sync;
