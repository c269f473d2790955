//! Any bytes into the sync message decoders and the change splitter: typed errors, never a
//! panic. `cargo fuzz run decode_message` (see docs/PROTOCOL.md).
#![no_main]

use homevisit_sync_core::sync::wire::frame_for_fuzzing;
use homevisit_sync_core::sync::{Request, Response, split_changes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Request::decode(data);
    let _ = Response::decode(data);
    let _ = split_changes(data);
    // Past the frame check too, so the body parser itself is explored.
    if let [kind, encoding, body @ ..] = data {
        let framed = frame_for_fuzzing(kind % 3, encoding % 3, body);
        let _ = Request::decode(&framed);
        let _ = Response::decode(&framed);
    }
});
