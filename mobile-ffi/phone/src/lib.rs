//! The phone as a library: what a field device does, whole, for `homevisit field` and for the
//! phone apps through `homevisit-ffi`.
//!
//! - [`Phone`]: the encrypted store holding the files, the session and the photo outbox;
//!   login, token refresh, the wipe order, the sync loop (photos first, then files, with
//!   retries), and the offline edits a visit makes.
//! - [`client::Client`]: the HTTP API as the phone speaks it.
//! - [`transport`]: the built-in HTTPS (rustls) or the app's own stack.
//!
//! No phone logic lives in the server crate or in the FFI layer: both call this.

pub mod client;
pub mod phone;
pub mod transport;

pub use phone::{
    Assessment, DangerReport, NewChild, Phone, PhoneError, Retry, Status, SyncReport, child_id,
    china_today,
};
