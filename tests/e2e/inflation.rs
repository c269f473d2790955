//! Compressed data that claims to be enormous: the server's memory stays flat, and the answer is
//! a 400 with a stable code. Measured on the real server process, by its peak resident memory.

use automerge::sync::SyncDoc;
use homevisit_sync_core::sync::Request;
use homevisit_sync_core::sync::chunks::{chunk_for_fuzzing, document_for_fuzzing};
use homevisit_sync_core::sync::wire::{DocSync, MAX_REQUEST_BODY, Upload, frame_for_fuzzing};
use std::io::Write;

use crate::harness::{Phone, Server, post_frame};

/// The most the server's peak memory may grow while it refuses these bodies.
const GROWTH_LIMIT: u64 = 64 << 20;

/// The process's peak resident set, bytes (Linux `VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

/// DEFLATE of `n` zero bytes, made in pieces so the test itself stays small.
fn deflated_zeros(n: usize) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let piece = vec![0u8; 1 << 20];
    for _ in 0..n / piece.len() {
        e.write_all(&piece).expect("deflate");
    }
    e.finish().expect("deflate")
}

#[test]
fn compressed_chunks_that_inflate_past_any_need_are_refused_with_flat_memory() {
    let server = Server::sqlite();
    let mut phone = Phone::new(&server, "dir_a");
    let child = phone.register("孔小乐", "220303100200");
    phone.sync();
    let client = &phone.client;
    let post = |frame: &[u8]| post_frame(client, frame);

    // 1 GiB of zeros, deflated to about 1 MB, which zstd takes to a few hundred bytes.
    let bomb = deflated_zeros(1 << 30);
    let compressed_change = Request {
        uploads: vec![Upload {
            doc: child,
            base: 0,
            changes: chunk_for_fuzzing(2, &bomb),
        }],
        ..Request::default()
    }
    .encode();
    // The same inside a document chunk's compressed column, in a sync message (version 2
    // messages may carry a whole document).
    let mut message = automerge::AutoCommit::new()
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .expect("a message");
    message.changes = document_for_fuzzing(&bomb).into();
    let compressed_column = Request {
        syncs: vec![DocSync {
            doc: child,
            message: message.encode(),
        }],
        ..Request::default()
    }
    .encode();
    assert!(
        compressed_change.len() < 20_000,
        "{}",
        compressed_change.len()
    );

    let pid = server.pid();
    let base = peak_rss(pid);
    let first = post(&compressed_change);
    assert_eq!(first.status, 400);
    assert_eq!(first.code().as_deref(), Some("corrupt_document"));
    let second = post(&compressed_column);
    assert_eq!(second.status, 400);
    assert_eq!(second.code().as_deref(), Some("decompression_limit"));
    // Several at once.
    std::thread::scope(|s| {
        for i in 0..8 {
            let frame = if i % 2 == 0 {
                &compressed_change
            } else {
                &compressed_column
            };
            s.spawn(move || assert_eq!(post(frame).status, 400));
        }
    });
    let growth = peak_rss(pid).saturating_sub(base);
    assert!(growth < GROWTH_LIMIT, "peak memory grew {growth} bytes");

    // A zstd body that would decompress past what a request may be.
    let huge = zstd::bulk::compress(&vec![0u8; MAX_REQUEST_BODY + 1], 19).expect("zstd");
    let zstd_bomb = post(&frame_for_fuzzing(1, 1, &huge));
    assert_eq!(zstd_bomb.status, 400);
    assert_eq!(zstd_bomb.code().as_deref(), Some("decompression_limit"));
    let growth = peak_rss(pid).saturating_sub(base);
    assert!(growth < GROWTH_LIMIT, "peak memory grew {growth} bytes");

    // Still up, and the phone still syncs.
    phone.sync();
}
