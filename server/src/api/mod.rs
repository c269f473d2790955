//! The HTTP layer: handlers, extractors and the mapping of errors to responses.

pub mod error;
pub mod health;
