//! Structured logs: `tracing` events as JSON lines on standard error, each with the span it
//! happened in (a `sync`, a `job` run, a webhook `delivery`).
//!
//! Every event has an `event` field naming what happened (`http_request`, `sync`,
//! `schedules_evaluated`, ...); failures carry `cause`. Nothing personal is ever logged:
//! events and spans name codes, sizes, counts and timings, never a name, an address, a
//! finding, a password, or a child's id; the request log records the route pattern
//! (`/api/v1/children/{id}`), not the path with its ids. `tests/e2e/ops.rs` holds the whole log
//! of a sync and a file read against the child's name and id.

/// Installs the JSON subscriber for the process (`homevisit serve`). A process that never calls
/// it (a test, the benchmark) logs nothing.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
