//! homevisit's core: the child file (一人一档) as an Automerge document, the visit-rules engine,
//! the sans-IO batch sync protocol and the encrypted device store.
//!
//! Nothing in this crate opens a socket or knows HTTP: the phone (through `mobile-ffi`) and the
//! server both drive it with bytes in and bytes out.

pub mod demo;
pub mod device;
pub mod file;
pub mod photo;
pub mod rules;
pub mod store;
pub mod sync;
pub mod vocab;
