//! Settings: defaults, then a TOML file, then `HOMEVISIT__` environment variables, then
//! command-line flags. One explicit [`Settings`] value is passed to everything that needs it;
//! there is no global configuration.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::service::alerts::Webhook;
use crate::store::{DatabaseUrl, StoreError};
use homevisit_sync_core::rules::RuleSet;

/// Everything the server reads from its configuration.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded database, generated certificates and keys live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// Connections in the database pool.
    pub database_pool_size: u32,
    /// The visit rules: a preset name (`tiedong`, `chongqing`) or the path of a rule file.
    pub rules: String,
    /// The largest sync request body accepted, bytes.
    pub max_sync_bytes: usize,
    /// Loaded child files kept in memory between syncs (0 turns the cache off).
    pub doc_cache: usize,
    /// The bearer token Prometheus sends for `/metrics`; empty: `/metrics` is not served.
    pub metrics_token: String,
    /// Seconds a request body may stall, and the grace before it must average 1 KiB/s.
    pub body_timeout: u64,
    /// The IANA time zone dates are counted in (schedules, "today").
    pub time_zone: String,
    /// A development or test server: allows `serve --today`. Never in production.
    pub development: bool,
    /// A fixed "today" (`serve --today`), for the demo and tests; never from a file.
    #[serde(skip)]
    pub today: Option<chrono::NaiveDate>,
    /// TLS.
    pub tls: TlsSettings,
    /// How alerts are raised and delivered.
    pub alerts: AlertSettings,
    /// Where alerts are delivered besides the API (`[[webhooks]]`).
    pub webhooks: Vec<Webhook>,
    /// Reports.
    pub reports: ReportSettings,
}

/// Reports (docs/REPORTS.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// A TOML file that renames (or leaves out) columns of the national update; empty: the
    /// standard headings.
    pub national_columns: String,
}

/// How alerts are raised and delivered (docs/ALERTS.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Days overdue after which the county is told (`overdue_escalated`).
    pub escalate_after_days: u32,
    /// The address people reach this server at, for links in group-robot messages; empty: the
    /// listening address.
    pub public_url: String,
    /// Seconds before the first retry of a failed delivery; each retry waits twice as long.
    pub retry_initial_secs: u64,
    /// The longest wait between retries, seconds.
    pub retry_max_secs: u64,
    /// Hours a delivery is retried before it is given up (at least 24).
    pub retry_for_hours: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            escalate_after_days: 14,
            public_url: String::new(),
            retry_initial_secs: 30,
            retry_max_secs: 3600,
            retry_for_hours: 48,
        }
    }
}

/// How the server speaks TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate for local use (kept in `data_dir`).
    pub dev: bool,
    /// Serve plain HTTP, for a deployment behind a TLS-terminating proxy. Never the default.
    pub plain_http: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("homevisit-data"),
            database_url: String::new(),
            database_pool_size: 8,
            rules: "tiedong".into(),
            max_sync_bytes: 16 << 20,
            doc_cache: 512,
            metrics_token: String::new(),
            body_timeout: 30,
            time_zone: "Asia/Shanghai".into(),
            development: false,
            today: None,
            tls: TlsSettings::default(),
            alerts: AlertSettings::default(),
            webhooks: Vec::new(),
            reports: ReportSettings::default(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redacted(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .field("rules", &self.rules)
            .field("max_sync_bytes", &self.max_sync_bytes)
            .field("doc_cache", &self.doc_cache)
            .field(
                "metrics_token",
                &if self.metrics_token.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("body_timeout", &self.body_timeout)
            .field("time_zone", &self.time_zone)
            .field("development", &self.development)
            .field("today", &self.today)
            .field("tls", &self.tls)
            .field("alerts", &self.alerts)
            .field("webhooks", &self.webhooks)
            .field("reports", &self.reports)
            .finish()
    }
}

fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Why settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The settings file or an environment variable does not parse.
    #[error("{origin}: {message}")]
    Parse {
        /// The file or variable.
        origin: String,
        /// What was wrong.
        message: String,
    },
    /// TLS settings that cannot work together.
    #[error("{0}")]
    Tls(&'static str),
    /// The database URL is not one we serve.
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// The documented example printed by `homevisit config default`.
pub const EXAMPLE: &str = r#"# homevisit server settings. Every key is optional; shown are the defaults.
# Each can also be set as an environment variable: HOMEVISIT__LISTEN,
# HOMEVISIT__TLS__CERT, ... (section and key upper-cased, joined by two underscores).

# Address and port to listen on.
listen = "127.0.0.1:8443"

# Where the embedded database, the generated development certificate and keys live.
data_dir = "homevisit-data"

# Empty: SQLite in data_dir. Or "postgres://user:password@host/dbname".
database_url = ""
database_pool_size = 8

# The visit rules: a preset (tiedong, chongqing) or the path of a rule file (docs/RULES.md).
rules = "tiedong"

# The largest sync request accepted, bytes; larger requests get 413.
max_sync_bytes = 16777216

# Loaded child files kept in memory between syncs, with their validated trees (each a few
# hundred KB); 0 turns it off.
doc_cache = 512

# Prometheus scrapes /metrics with "Authorization: Bearer METRICS_TOKEN". Empty: /metrics is
# not served at all (404). Set it from the environment (HOMEVISIT__METRICS_TOKEN) rather than
# in a file others can read.
metrics_token = ""

# Seconds a request body may stall; after that many seconds it must also have averaged at
# least 1 KiB/s (slow 2G carries about 6). A body that fails either gets 408.
body_timeout = 30

# The IANA time zone the children's dates are counted in: what "today" and "overdue" mean.
time_zone = "Asia/Shanghai"

# A development or test server: allows `serve --today YYYY-MM-DD`. Never in production.
development = false

[alerts]
# Days overdue after which the county is told too (overdue_escalated).
escalate_after_days = 14
# The address people reach this server at, for the link in group-robot messages.
public_url = ""
# A failed webhook delivery is retried after 30 s, then twice as long each time up to an hour,
# for 48 hours (at least 24) before it is given up.
retry_initial_secs = 30
retry_max_secs = 3600
retry_for_hours = 48

# Webhook receivers, any number. Group robots (wecom, dingtalk) get digests with the place,
# the kind and a count, never a child; generic receivers get JSON with ids, signed
# X-Homevisit-Signature: sha256=HMAC(secret, body).
# [[webhooks]]
# name = "county-wecom"
# url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."
# format = "wecom"                         # generic, wecom or dingtalk
# kinds = ["danger", "overdue_escalated"]  # empty: every kind
# region = "220303"                        # only villages under this code; empty: all
# secret = ""                              # generic: HMAC key; dingtalk: signing secret
# language = "zh"                          # zh or en

[reports]
# A TOML file renaming columns of the national update to the province's import template
# (column_key = "heading", or column_key = false to leave it out); empty: standard headings.
national_columns = ""

[tls]
# PEM files of the certificate chain and its key.
# cert = "/etc/homevisit/fullchain.pem"
# key = "/etc/homevisit/privkey.pem"
# A self-signed certificate for trying homevisit out on one machine.
dev = false
# Plain HTTP, only behind a proxy that terminates TLS.
plain_http = false
"#;

impl Settings {
    /// Defaults, then `file` if given, then `HOMEVISIT__` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut tree =
            toml::Table::try_from(Settings::default()).map_err(|e| SettingsError::Parse {
                origin: "defaults".into(),
                message: e.to_string(),
            })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                path: path.to_owned(),
                source,
            })?;
            let layer: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| SettingsError::Parse {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            merge(&mut tree, layer);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HOMEVISIT__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set(&mut tree, &path, &value);
        }
        let settings: Settings =
            toml::Value::Table(tree)
                .try_into()
                .map_err(|e: toml::de::Error| SettingsError::Parse {
                    origin: "settings".into(),
                    message: e.to_string(),
                })?;
        Ok(settings)
    }

    /// The database the settings name: the URL, or SQLite in the data directory.
    pub fn database(&self) -> Result<DatabaseUrl, SettingsError> {
        if self.database_url.is_empty() {
            Ok(DatabaseUrl::Sqlite(
                self.data_dir.join("homevisit.sqlite").display().to_string(),
            ))
        } else {
            Ok(DatabaseUrl::parse(&self.database_url)?)
        }
    }

    /// The clock "today" is read from, in the settings' time zone.
    pub fn clock(&self) -> Result<crate::service::clock::Clock, SettingsError> {
        use crate::service::clock::{Clock, parse_zone};
        let zone = parse_zone(&self.time_zone).map_err(|message| SettingsError::Parse {
            origin: "time_zone".into(),
            message,
        })?;
        Ok(match self.today {
            Some(today) => Clock::fixed(zone, today),
            None => Clock::new(zone),
        })
    }

    /// The rule set the settings name.
    pub fn rule_set(&self) -> Result<RuleSet, SettingsError> {
        load_rules(&self.rules)
    }

    /// How alerts are raised and delivered, checked.
    pub fn alert_policy(&self) -> Result<crate::service::alerts::Policy, SettingsError> {
        let invalid = |message: String| SettingsError::Parse {
            origin: "webhooks".into(),
            message,
        };
        let mut names = std::collections::BTreeSet::new();
        for hook in &self.webhooks {
            hook.check().map_err(invalid)?;
            if !names.insert(&hook.name) {
                return Err(invalid(format!("two webhooks are named {}", hook.name)));
            }
        }
        if self.alerts.retry_for_hours < 24 {
            return Err(SettingsError::Parse {
                origin: "alerts.retry_for_hours".into(),
                message: "deliveries are retried for at least 24 hours".into(),
            });
        }
        Ok(crate::service::alerts::Policy {
            escalate_after_days: self.alerts.escalate_after_days,
            webhooks: self.webhooks.clone(),
            bus: Default::default(),
        })
    }

    /// The columns of the national update: the standard ones, or as the mapping file names.
    pub fn national_columns(&self) -> Result<crate::service::national::Columns, SettingsError> {
        use crate::service::national::Columns;
        let path = &self.reports.national_columns;
        if path.is_empty() {
            return Ok(Columns::default());
        }
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.into(),
            source,
        })?;
        Columns::from_mapping(&text).map_err(|e| SettingsError::Parse {
            origin: path.clone(),
            message: e.to_string(),
        })
    }

    /// Checks that the TLS settings make sense together.
    pub fn check_tls(&self) -> Result<(), SettingsError> {
        let t = &self.tls;
        let files = t.cert.is_some() || t.key.is_some();
        match (files, t.dev, t.plain_http) {
            (true, _, _) if t.cert.is_none() || t.key.is_none() => {
                Err(SettingsError::Tls("--tls-cert and --tls-key go together"))
            }
            (true, true, _) | (true, _, true) | (_, true, true) => Err(SettingsError::Tls(
                "choose one of: certificate files, --dev-tls, or --plain-http",
            )),
            (false, false, false) => Err(SettingsError::Tls(
                "no TLS configured: give --tls-cert and --tls-key, or --dev-tls to try it out, \
                 or --plain-http behind a TLS-terminating proxy",
            )),
            _ => Ok(()),
        }
    }
}

/// A rule set named as the `rules` setting names one: a preset (`tiedong`, `chongqing`) or the
/// path of a rule file.
pub fn load_rules(spec: &str) -> Result<RuleSet, SettingsError> {
    let parsed = if homevisit_sync_core::rules::presets::NAMES.contains(&spec) {
        RuleSet::preset(spec)
    } else {
        let text = std::fs::read_to_string(spec).map_err(|source| SettingsError::Read {
            path: PathBuf::from(spec),
            source,
        })?;
        RuleSet::from_toml(&text)
    };
    parsed.map_err(|e| SettingsError::Parse {
        origin: format!("rules `{spec}`"),
        message: e.to_string(),
    })
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (k, v) in layer {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Sets a value from an environment variable, typed by what the tree holds there.
fn set(tree: &mut toml::Table, path: &[String], raw: &str) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = tree;
    for p in parents {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(t) = entry else {
            return;
        };
        table = t;
    }
    let value = match table.get(last) {
        Some(toml::Value::Boolean(_)) => raw
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .unwrap_or_else(|_| toml::Value::String(raw.to_owned())),
        Some(toml::Value::Integer(_)) => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(raw.to_owned())),
        _ => toml::Value::String(raw.to_owned()),
    };
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example: Settings = toml::from_str(EXAMPLE).expect("example parses");
        assert_eq!(example, Settings::default());
    }

    #[test]
    fn a_file_then_the_environment_override_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("homevisit.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\n[tls]\ndev = true\n").expect("write");
        let env = [
            ("HOMEVISIT__TLS__DEV".to_owned(), "false".to_owned()),
            ("HOMEVISIT__DATABASE_POOL_SIZE".to_owned(), "3".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ];
        let s = Settings::load(Some(&path), env).expect("load");
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert!(!s.tls.dev);
        assert_eq!(s.database_pool_size, 3);
    }

    #[test]
    fn an_unknown_setting_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("homevisit.toml");
        std::fs::write(&path, "listn = \"0.0.0.0:9000\"\n").expect("write");
        let err = Settings::load(Some(&path), []).expect_err("refused");
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Settings {
            database_url: "postgres://hv:s3cret@db/hv".into(),
            metrics_token: "t0ken".into(),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }

    #[test]
    fn tls_must_be_chosen_explicitly() {
        let mut s = Settings::default();
        assert!(s.check_tls().is_err(), "no TLS at all is refused");
        s.tls.plain_http = true;
        assert!(s.check_tls().is_ok());
        s.tls.dev = true;
        assert!(s.check_tls().is_err());
        s.tls = TlsSettings {
            cert: Some("c.pem".into()),
            ..TlsSettings::default()
        };
        assert!(s.check_tls().is_err(), "a certificate without its key");
    }
}
