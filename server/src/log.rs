//! Structured logs: one JSON object per line on standard error.
//!
//! Nothing personal is ever logged: events name ids, codes, sizes and timings, never a name,
//! an address, a finding or a password. Callers pass only such fields; the request log records
//! the route pattern (`/api/v1/children/{id}`), not the path with its ids.

use serde_json::{Map, Value};

fn emit(level: &str, event: &str, fields: Map<String, Value>) {
    let mut line = Map::new();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    line.insert("ts_ms".into(), ts.into());
    line.insert("level".into(), level.into());
    line.insert("event".into(), event.into());
    line.extend(fields);
    eprintln!("{}", Value::Object(line));
}

/// An error the operator should see (the caller only gets `internal_error`).
pub fn error(event: &str, cause: &str) {
    let mut fields = Map::new();
    fields.insert("cause".into(), cause.into());
    emit("error", event, fields);
}

/// An informational event with fields.
pub fn info(event: &str, fields: &[(&str, Value)]) {
    emit(
        "info",
        event,
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    );
}
