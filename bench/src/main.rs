//! `cargo run --release -p homevisit-bench`: measures homevisit against the bars of DESIGN.md
//! and writes `BENCHMARKS.md` at the workspace root, with the date and the machine.
//!
//! Byte counts are exact and repeatable (seeded workload); times are medians of repeated runs
//! on this machine. Nothing here asserts: a bar that is missed is reported as missed.

mod device;
mod photo;
mod report;
mod sync;

use anyhow::Result;
use report::Report;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // The device benchmark measures peak memory in a fresh process of its own.
    if args.get(1).map(String::as_str) == Some("--child-open-store") {
        return device::child_open_store(&args[2..]);
    }
    let mut report = Report::new();
    eprintln!("file: 10 years of visits");
    sync::ten_year_file(&mut report)?;
    eprintln!("sync: daily, idle, first, fallback");
    sync::sync_figures(&mut report)?;
    eprintln!("photo: 12 megapixels to 1600 px");
    photo::photo(&mut report)?;
    eprintln!("device: open a 200-file store and list who is due");
    device::open_store(&mut report)?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    std::fs::write(&path, report.render())?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
