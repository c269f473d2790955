//! Delivering alerts to webhooks, at least once, from the outbox that the raising transaction
//! wrote (`store::alerts::enqueue`).
//!
//! Each receiver is served by its own loop (see `app.rs`), so a dead receiver delays only
//! itself and never a sync. A delivery is leased while it is being sent, so of several
//! instances one sends it; a failure is retried with doubling waits for
//! `alerts.retry_for_hours` (at least 24). Every delivery carries a stable id, the same on
//! every attempt, for receivers to drop duplicates by.
//!
//! * `generic`: one alert per delivery, as JSON with ids (no name), signed with
//!   `X-Homevisit-Signature: sha256=<hex HMAC-SHA256 of the body>` when a secret is set.
//! * `wecom`, `dingtalk`: group robots post into chats whose members we do not check, so they
//!   get digests of what is pending: per kind, the place and a count, and a link into
//!   homevisit. No child's name, address or finding (PIPL arts. 28 and 31).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::service::alerts::{Format, Lang, Webhook, kind_title, rfc3339};
use crate::store::alerts::{self as rows, Pending};
use crate::store::{DbConnection, write_transaction};

/// Deliveries (or digests) a sender takes at once.
pub const BATCH: i64 = 16;

/// Outbox rows one robot digest gathers at most.
pub const DIGEST_ROWS: i64 = 500;

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How deliveries are retried and linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Seconds before the first retry.
    pub retry_initial_secs: u64,
    /// The longest wait between retries.
    pub retry_max_secs: u64,
    /// Seconds a delivery is retried before it is given up.
    pub retry_for_secs: u64,
    /// The link robot messages carry.
    pub public_url: String,
}

impl Delivery {
    /// When to try again after `attempts` failures of a delivery first written at
    /// `created_at`; `None` once it has been retried for long enough.
    pub fn next_attempt(&self, attempts: i32, created_at: i64, now: i64) -> Option<i64> {
        let shift = u32::try_from(attempts.max(0)).unwrap_or(0).min(30);
        let wait = self
            .retry_initial_secs
            .max(1)
            .saturating_mul(1 << shift)
            .min(self.retry_max_secs.max(1));
        let next = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
        let deadline =
            created_at.saturating_add(i64::try_from(self.retry_for_secs).unwrap_or(i64::MAX));
        (next <= deadline).then_some(next)
    }
}

/// Takes the deliveries of `hook` that are due, gathering a robot's pending rows into a digest
/// first.
pub fn claim_due(
    conn: &mut DbConnection,
    hook: &Webhook,
    now: i64,
) -> diesel::QueryResult<Vec<Pending>> {
    let robot = hook.format.is_robot();
    write_transaction(conn, |c| {
        if robot {
            rows::gather_digest(
                c,
                &hook.name,
                &uuid::Uuid::new_v4().to_string(),
                DIGEST_ROWS,
            )?;
        }
        let lease = now + 2 * TIMEOUT.as_secs() as i64 + 30;
        rows::claim(c, &hook.name, robot, now, lease, BATCH)
    })
}

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where.
    pub url: String,
    /// Headers besides Content-Type (JSON).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `sha256=<hex>` signature of a generic body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

/// DingTalk's `timestamp` and `sign` parameters for `secret` at `now_ms`: the base64 of
/// HMAC-SHA256(secret, `"{timestamp}\n{secret}"`), URL-encoded.
pub fn dingtalk_sign(secret: &str, now_ms: i64) -> String {
    let mac = hmac_sha256(secret.as_bytes(), format!("{now_ms}\n{secret}").as_bytes());
    let sign = base64::engine::general_purpose::STANDARD.encode(mac);
    format!("timestamp={now_ms}&sign={}", percent_encode(&sign))
}

/// The request that delivers `pending` to `hook`, as of `now_ms`.
pub fn render(
    conn: &mut DbConnection,
    hook: &Webhook,
    delivery: &Delivery,
    pending: &Pending,
    now_ms: i64,
) -> diesel::QueryResult<Message> {
    let mut headers = vec![("X-Homevisit-Delivery".to_owned(), pending.id.clone())];
    match hook.format {
        Format::Generic => {
            let mut alerts = Vec::new();
            for (seq, alert_id, _, _) in &pending.rows {
                let Some(a) = rows::get(conn, alert_id)? else {
                    continue;
                };
                alerts.push(json!({
                    "event_seq": seq,
                    "action": "raised",
                    "alert": {
                        "id": a.id,
                        "kind": a.kind,
                        "status": a.status,
                        "child_id": a.child_id,
                        "village": a.village,
                        "raised_at": rfc3339(a.raised_at),
                        "schedule_kind": a.schedule_kind,
                        "due": a.due,
                        "danger_kind": a.danger_kind.map(|k| k.split(',').map(str::to_owned).collect::<Vec<_>>()),
                        "danger_date": if a.kind == "danger" { a.record_date.clone() } else { None },
                    }
                }));
            }
            let body = json!({ "delivery_id": pending.id, "events": alerts }).to_string();
            if !hook.secret.is_empty() {
                headers.push((
                    "X-Homevisit-Signature".to_owned(),
                    signature(&hook.secret, body.as_bytes()),
                ));
            }
            Ok(Message {
                url: hook.url.clone(),
                headers,
                body,
            })
        }
        Format::Wecom | Format::Dingtalk => {
            let villages: Vec<String> = pending.rows.iter().map(|r| r.3.clone()).collect();
            let places = crate::store::people::place_names(conn, &villages)?;
            let text = digest_text(pending, &places, hook.language, &delivery.public_url);
            let title = match hook.language {
                Lang::Zh => "homevisit 提醒",
                Lang::En => "homevisit alerts",
            };
            if hook.format == Format::Wecom {
                let body = json!({"msgtype": "markdown", "markdown": {"content": text}});
                return Ok(Message {
                    url: hook.url.clone(),
                    headers,
                    body: body.to_string(),
                });
            }
            let body = json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}});
            let url = if hook.secret.is_empty() {
                hook.url.clone()
            } else {
                let sep = if hook.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}{}", hook.url, dingtalk_sign(&hook.secret, now_ms))
            };
            Ok(Message {
                url,
                headers,
                body: body.to_string(),
            })
        }
    }
}

/// A robot digest: per kind, each place with a count, and a link. Nothing about a child.
pub fn digest_text(
    pending: &Pending,
    places: &BTreeMap<String, String>,
    lang: Lang,
    public_url: &str,
) -> String {
    let mut counts: BTreeMap<(usize, &str), BTreeMap<&str, usize>> = BTreeMap::new();
    for (_, _, kind, village) in &pending.rows {
        // Dangers first, then the most pressing schedule alerts.
        let rank = match kind.as_str() {
            "danger" => 0,
            "overdue_escalated" => 1,
            "overdue" => 2,
            _ => 3,
        };
        *counts
            .entry((rank, kind.as_str()))
            .or_default()
            .entry(village.as_str())
            .or_default() += 1;
    }
    let mut text = match lang {
        Lang::Zh => "### homevisit 提醒\n".to_owned(),
        Lang::En => "### homevisit alerts\n".to_owned(),
    };
    for ((_, kind), villages) in counts {
        text.push_str(&format!("**{}**\n", kind_title(kind, lang)));
        for (village, n) in villages {
            let place = places.get(village).map_or(village, String::as_str);
            let unit = match (kind, lang) {
                ("danger", Lang::Zh) => "起",
                (_, Lang::Zh) => "人",
                _ => "",
            };
            let sep = if lang == Lang::Zh { "：" } else { ": " };
            text.push_str(&format!("> {place}{sep}{n}{unit}\n"));
        }
    }
    let base = public_url.trim_end_matches('/');
    match lang {
        Lang::Zh => text.push_str(&format!(
            "\n[在 homevisit 中查看]({base}/api/v1/alerts?status=open)"
        )),
        Lang::En => text.push_str(&format!(
            "\n[Open in homevisit]({base}/api/v1/alerts?status=open)"
        )),
    }
    text
}

/// An agent for receivers: system roots, no redirects, a bounded time.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

/// Sends one message: `Ok` when the receiver took it (2xx, and for robots `errcode` 0).
pub fn send(agent: &ureq::Agent, hook: &Webhook, message: &Message) -> Result<(), String> {
    let mut request = agent
        .post(&message.url)
        .header("Content-Type", "application/json; charset=utf-8");
    for (name, value) in &message.headers {
        request = request.header(name, value);
    }
    let mut response = request
        .send(message.body.as_bytes())
        .map_err(|e| format!("transport: {e}"))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if hook.format.is_robot() {
        let answer = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        let code = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("errcode").and_then(|c| c.as_i64()));
        if code.is_some_and(|c| c != 0) {
            return Err(format!("robot errcode {}", code.unwrap_or_default()));
        }
    }
    Ok(())
}

/// Records how an attempt went: delivered, or failed and retried later or given up. Returns
/// false when it was given up.
pub fn record(
    conn: &mut DbConnection,
    delivery: &Delivery,
    pending: &Pending,
    outcome: &Result<(), String>,
    now: i64,
) -> diesel::QueryResult<bool> {
    write_transaction(conn, |c| match outcome {
        Ok(()) => rows::delivered(c, &pending.id, now).map(|()| true),
        Err(e) => {
            let next = delivery.next_attempt(pending.attempts, pending.created_at, now);
            rows::attempt_failed(c, &pending.id, e, next, now)?;
            Ok(next.is_some())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            retry_initial_secs: 30,
            retry_max_secs: 3600,
            retry_for_secs: 48 * 3600,
            public_url: "https://hv.example.gov.cn".into(),
        }
    }

    #[test]
    fn retries_double_up_to_an_hour_and_stop_after_the_retry_period() {
        let d = delivery();
        assert_eq!(d.next_attempt(0, 0, 100), Some(130));
        assert_eq!(d.next_attempt(1, 0, 100), Some(160));
        assert_eq!(d.next_attempt(3, 0, 100), Some(340));
        assert_eq!(d.next_attempt(20, 0, 100), Some(3700));
        assert_eq!(d.next_attempt(20, 0, 48 * 3600 - 10), None);
    }

    #[test]
    fn dingtalk_signs_the_timestamp_and_secret_as_its_documentation_says() {
        // HMAC-SHA256("SEC1", "1700000000000\nSEC1"), base64, URL-encoded.
        let mac = hmac_sha256(b"SEC1", b"1700000000000\nSEC1");
        let expected = percent_encode(&base64::engine::general_purpose::STANDARD.encode(mac));
        assert_eq!(
            dingtalk_sign("SEC1", 1_700_000_000_000),
            format!("timestamp=1700000000000&sign={expected}")
        );
        assert!(!expected.contains('+') && !expected.contains('/') && !expected.contains('='));
    }

    #[test]
    fn a_robot_digest_names_places_kinds_and_counts_and_nothing_about_a_child() {
        let pending = Pending {
            id: "d1".into(),
            webhook: "w".into(),
            attempts: 0,
            created_at: 0,
            rows: vec![
                (1, "a1".into(), "overdue".into(), "220303001001".into()),
                (2, "a2".into(), "overdue".into(), "220303001001".into()),
                (3, "a3".into(), "danger".into(), "220303001002".into()),
            ],
        };
        let places = BTreeMap::from([("220303001001".to_owned(), "平安街道 平安村".to_owned())]);
        let text = digest_text(&pending, &places, Lang::Zh, "https://hv.example.gov.cn/");
        assert!(text.contains("> 平安街道 平安村：2人"), "{text}");
        assert!(text.contains("> 220303001002：1起"), "{text}");
        assert!(
            text.find("危险").unwrap_or(usize::MAX) < text.find("逾期").unwrap_or(0),
            "{text}"
        );
        assert!(text.contains("(https://hv.example.gov.cn/api/v1/alerts?status=open)"));
        assert!(!text.contains("a1") && !text.contains("a3"), "{text}");
    }
}
