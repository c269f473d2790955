//! The phone SDK's figures: the due list of a 200-file store through Kotlin beside the same
//! call in Rust, the FFI's cost per call, the photo pipeline called from Kotlin, and the size of
//! the stripped release library.
//!
//! The Kotlin side (mobile-ffi/bench/Bench.kt) is compiled by `mobile-ffi/bench/prepare DIR`,
//! which `scripts/bench` runs first and names here in `HOMEVISIT_SDK_BENCH`.

use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::device::{KEY, fill};
use crate::report::{Report, kb, median, ms};

const ON: &str = "2027-01-15";

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The figures the Kotlin benchmark printed, by name.
fn kotlin(dir: &Path, store: &Path, photo: &Path) -> Result<BTreeMap<String, u64>> {
    let classpath = std::fs::read_to_string(dir.join("classpath"))?;
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("java")
        .arg(format!(
            "-Djna.library.path={}",
            dir.join("python").display()
        ))
        .arg("-cp")
        .arg(format!(
            "{}:{}",
            dir.join("bench.jar").display(),
            classpath.trim()
        ))
        .arg("homevisit.bench.BenchKt")
        .arg(store)
        .arg(hex)
        .arg(photo)
        .arg(ON)
        .output()
        .context("running the Kotlin benchmark")?;
    if !out.status.success() {
        bail!(
            "the Kotlin benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}

pub fn sdk(report: &mut Report) -> Result<()> {
    let Ok(dir) = std::env::var("HOMEVISIT_SDK_BENCH") else {
        report.note(
            "The phone SDK's figures were not measured: run `bash scripts/bench`, which prepares \
             the Kotlin side first."
                .into(),
        );
        return Ok(());
    };
    let dir = Path::new(&dir);
    let phone_dir = tempfile::tempdir()?;
    fill(&phone_dir.path().join("store"))?;
    let dir_text = phone_dir.path().display().to_string();

    // Rust, through the same API the bindings call (records converted, the lock taken).
    let phone = homevisit_ffi::Phone::open(dir_text.clone(), KEY.to_vec())?;
    let entries = phone.due(ON.into())?.len();
    let rust_due = median(101, || phone.due(ON.into()).map(|d| d.len()));
    drop(phone);

    let photo_file = tempfile::NamedTempFile::new()?;
    std::fs::write(photo_file.path(), crate::photo::camera_photo()?)?;
    let k = kotlin(dir, phone_dir.path(), photo_file.path())?;
    let get = |name: &str| {
        k.get(name)
            .copied()
            .with_context(|| format!("the Kotlin benchmark printed no {name}"))
    };
    let kotlin_due = Duration::from_nanos(get("due_ns")?);
    let call = Duration::from_nanos(get("call_ns")?);
    let photo_ns = Duration::from_nanos(get("photo_ns")?);
    let photo_bytes = get("photo_bytes")? as usize;
    if get("due_entries")? as usize != entries {
        bail!("Kotlin and Rust disagree on the due list");
    }
    report.row(
        &format!("SDK: due list of a 200-file store ({entries} entries), from Kotlin"),
        format!(
            "{} (Rust, same call: {}; the FFI adds {})",
            ms(kotlin_due),
            ms(rust_due),
            ms(kotlin_due.saturating_sub(rust_due))
        ),
        "no bar (DESIGN.md: the due list opens instantly)",
        None,
    );
    report.row(
        "SDK: one call through the FFI that does nothing (sdkVersion from Kotlin)",
        us(call),
        "no bar",
        None,
    );
    report.row(
        "SDK: 12-megapixel JPEG to a 1600 px JPEG, called from Kotlin: size",
        kb(photo_bytes),
        "under 300 KB",
        Some(photo_bytes < 300_000),
    );
    report.row(
        "SDK: 12-megapixel JPEG to a 1600 px JPEG, called from Kotlin: time on one core",
        ms(photo_ns),
        "under 400 ms",
        Some(photo_ns.as_secs_f64() < 0.4),
    );
    let library = dir.join("python").join("libhomevisit_ffi.so");
    let stripped = tempfile::NamedTempFile::new()?;
    std::fs::copy(&library, stripped.path())?;
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg(stripped.path())
        .status()
        .context("running strip")?;
    if !status.success() {
        bail!("strip failed");
    }
    let size = std::fs::metadata(stripped.path())?.len() as usize;
    report.row(
        "SDK: shared library as shipped (profile `mobile`) for x86-64 Linux, stripped",
        format!(
            "{:.1} MB (unstripped {:.1} MB)",
            size as f64 / 1e6,
            std::fs::metadata(&library)?.len() as f64 / 1e6
        ),
        "aim under 8 MB",
        Some(size < 8_000_000),
    );
    Ok(())
}
