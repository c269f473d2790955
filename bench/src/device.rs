//! Device figures: opening a store of 200 files and listing who is due, in a fresh process so
//! that its peak memory is the phone's, not the benchmark's.

use anyhow::{Context as _, Result, bail};
use homevisit_sync_core::demo::Generator;
use homevisit_sync_core::device::Device;
use homevisit_sync_core::rules::RuleSet;
use homevisit_sync_core::store::StoreKey;
use homevisit_sync_core::sync::device::Outcome;
use homevisit_sync_core::sync::memory::MemoryStore;
use homevisit_sync_core::sync::server::{self, Context, DEFAULT_PAGE_BYTES};
use homevisit_sync_core::sync::{DeviceId, Request, Scope};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::report::{Report, ms};
use crate::sync::{VILLAGE, date, files};

pub const KEY: [u8; 32] = [42; 32];

/// Fills a phone's store as its first sync does: 200 files with 2 years of history.
pub fn fill(path: &Path) -> Result<()> {
    let mut server_store = MemoryStore::default();
    let mut g = Generator::new(3);
    for file in files(&mut g, 200, 24)? {
        let id = file.id()?;
        let mut doc = file.into_doc();
        server_store.insert(id, VILLAGE, &mut doc);
    }
    let mut device = Device::open(path, &StoreKey::new(KEY))?;
    let scope = Scope::new([VILLAGE]);
    let id = DeviceId::new();
    for _ in 0..4 {
        let request = Request::decode(&device.sync_request()?)?;
        let ctx = Context {
            device: id,
            user: "director-0001",
            author: "director-0001",
            scope: &scope,
            now_ms: 0,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked: false,
        };
        let response = server_store
            .transaction(|s| server::handle(s, &ctx, &request))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if device.sync_receive(&response.encode(), 0)? == Outcome::Done {
            break;
        }
    }
    if device.len() != 200 {
        bail!("the phone holds {} files, not 200", device.len());
    }
    Ok(())
}

/// In the child: open, list who is due, report time, the list's length and peak memory.
pub fn child_open_store(args: &[String]) -> Result<()> {
    let path = args.first().context("store path")?;
    let started = Instant::now();
    let device = Device::open(Path::new(path), &StoreKey::new(KEY))?;
    let rules = RuleSet::preset("tiedong")?;
    let due = device.due(&rules, date("2027-01-15"));
    let elapsed = started.elapsed();
    let peak_kb = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    println!("{} {} {}", elapsed.as_micros(), due.len(), peak_kb);
    Ok(())
}

pub fn open_store(report: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("phone.db");
    fill(&path)?;
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for _ in 0..7 {
        let out = Command::new(&exe)
            .arg("--child-open-store")
            .arg(&path)
            .output()?;
        if !out.status.success() {
            bail!("child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8(out.stdout)?;
        let mut parts = text.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(us)), Some(Ok(due)), Some(Ok(peak))) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("child printed {text:?}");
        };
        runs.push((Duration::from_micros(us), due, peak));
    }
    runs.sort();
    let (time, due, peak_kb) = runs[runs.len() / 2];
    let peak_mb = peak_kb as f64 / 1024.0;
    report.row(
        "device: open an encrypted store of 200 files (2 years each) and list who is due",
        format!(
            "{} ({due} due or overdue), peak {peak_mb:.1} MB for the whole process",
            ms(time)
        ),
        "under 200 ms, under 50 MB",
        Some(time.as_secs_f64() < 0.2 && peak_mb < 50.0),
    );
    Ok(())
}
