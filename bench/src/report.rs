//! The BENCHMARKS.md page: measured figures beside their bars, and the network model.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// One line of the results table.
pub struct Row {
    pub what: String,
    pub measured: String,
    pub bar: String,
    pub met: Option<bool>,
}

/// A sync measured in bytes and round trips.
pub struct SyncFigure {
    pub name: String,
    pub up: usize,
    pub down: usize,
    pub round_trips: usize,
}

/// A network of DESIGN.md's field model.
struct Network {
    name: &'static str,
    kbit: f64,
    rtt_ms: f64,
}

const NETWORKS: [Network; 3] = [
    Network {
        name: "slow 2G (50 kbit/s, 2 s RTT)",
        kbit: 50.0,
        rtt_ms: 2000.0,
    },
    Network {
        name: "2G (70 kbit/s, 1.4 s RTT)",
        kbit: 70.0,
        rtt_ms: 1400.0,
    },
    Network {
        name: "3G (700 kbit/s, 270 ms RTT)",
        kbit: 700.0,
        rtt_ms: 270.0,
    },
];

/// Round trips a new connection adds before the first request: TCP, then TLS 1.3, resumed or
/// not (0-RTT data is not accepted: docs/OPERATIONS.md, TLS).
const HANDSHAKE_ROUND_TRIPS: f64 = 2.0;
/// Bytes a full TLS 1.3 handshake moves with a deployment's certificate chain: 1,052 B were
/// measured with the one-certificate development chain (tests/e2e/http.rs), and a leaf with
/// an intermediate adds 2 to 4 KB.
const NEW_HANDSHAKE_BYTES: f64 = 4_000.0;
/// Bytes a resumed TLS 1.3 handshake moves (measured: 603 B, with the session ticket).
const RESUMED_HANDSHAKE_BYTES: f64 = 603.0;

pub struct Report {
    rows: Vec<Row>,
    syncs: Vec<SyncFigure>,
    notes: Vec<String>,
}

impl Report {
    pub fn new() -> Self {
        Report {
            rows: Vec::new(),
            syncs: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, what: &str, measured: String, bar: &str, met: Option<bool>) {
        eprintln!("  {what}: {measured} (bar: {bar})");
        self.rows.push(Row {
            what: what.to_owned(),
            measured,
            bar: bar.to_owned(),
            met,
        });
    }

    pub fn sync(&mut self, figure: SyncFigure) {
        self.syncs.push(figure);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `bash scripts/bench` (`cargo run --release -p homevisit-bench` after starting PostgreSQL) on {} ({}).\n",
            today(),
            machine()
        );
        let _ = writeln!(s, "## Against the bars of DESIGN.md\n");
        let _ = writeln!(
            s,
            "| what | measured | bar | met |\n| --- | --- | --- | --- |"
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(s, "| {} | {} | {} | {} |", r.what, r.measured, r.bar, met);
        }
        let _ = writeln!(s, "\n## Syncs on field networks\n");
        let _ = writeln!(
            s,
            "Bodies as sent (framed, compressed). Time = round trips x RTT + bytes / bandwidth; \
             a new connection adds {HANDSHAKE_ROUND_TRIPS} round trips (TCP, TLS 1.3) and \
             {NEW_HANDSHAKE_BYTES} B of handshake (a deployment's certificate chain), a resumed \
             one the same round trips and {RESUMED_HANDSHAKE_BYTES} B (TLS 1.3 session ticket). \
             HTTP headers are not included here except where a row says so: the server \
             benchmark measures them over real HTTP.\n"
        );
        let _ = write!(s, "| sync | up B | down B | round trips |");
        for n in &NETWORKS {
            let _ = write!(s, " {} warm / new / resumed |", n.name);
        }
        let _ = write!(s, "\n| --- | --- | --- | --- |");
        for _ in &NETWORKS {
            let _ = write!(s, " --- |");
        }
        let _ = writeln!(s);
        for f in &self.syncs {
            let _ = write!(
                s,
                "| {} | {} | {} | {} |",
                f.name, f.up, f.down, f.round_trips
            );
            for n in &NETWORKS {
                let bytes = (f.up + f.down) as f64;
                let transfer = bytes * 8.0 / (n.kbit * 1000.0);
                let warm = f.round_trips as f64 * n.rtt_ms / 1000.0 + transfer;
                let handshake = |bytes: f64| {
                    HANDSHAKE_ROUND_TRIPS * n.rtt_ms / 1000.0 + bytes * 8.0 / (n.kbit * 1000.0)
                };
                let new = warm + handshake(NEW_HANDSHAKE_BYTES);
                let resumed = warm + handshake(RESUMED_HANDSHAKE_BYTES);
                let _ = write!(s, " {warm:.1} / {new:.1} / {resumed:.1} s |");
            }
            let _ = writeln!(s);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

/// The median of `runs` timings of `f`.
pub fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn kb(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(String::new(), |k| format!(", {} GiB", k / 1024 / 1024));
    format!("{cpu}, {cores} cores{mem}")
}
