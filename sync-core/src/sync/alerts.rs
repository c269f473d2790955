//! Alerts on the phone (protocol version 3): the items that carry them, and what a phone keeps
//! of them (docs/PROTOCOL.md, "Alerts").
//!
//! * The device asks for alerts after the last event it has ([`AFTER`], a varint; 0 at first).
//! * The server answers with each alert that changed since, as it is now ([`ALERT`], JSON with
//!   its `seq`), and the event number it got to ([`UPTO`]). A closed alert is sent once so the
//!   phone drops it. A first sync gets only the alerts not yet closed.
//! * An acknowledgement made offline is kept on the phone ([`ACK`], JSON) and sent with every
//!   request until the server answers it ([`ACK_RESULT`]). The server applies it
//!   idempotently: a second copy changes nothing.
//!
//! Version 1 and 2 phones send none of these, and get none.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::wire::Item;

/// Device to server: the last alert event the device holds (varint).
pub const AFTER: u64 = 1;
/// Server to device: one alert as it is now (JSON, [`Alert`]).
pub const ALERT: u64 = 2;
/// Server to device: the event number the alerts sent reach (varint).
pub const UPTO: u64 = 3;
/// Device to server: an acknowledgement (JSON, [`Ack`]).
pub const ACK: u64 = 4;
/// Server to device: what became of an acknowledgement (JSON, [`AckResult`]).
pub const ACK_RESULT: u64 = 5;

/// The most alerts one response carries; more wait for the next round.
pub const PAGE: usize = 500;

/// An alert as the phone receives it: the fields it shows, and the rest kept as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The alert.
    pub id: String,
    /// The event number it was sent for.
    pub seq: i64,
    /// `due_soon`, `overdue`, `overdue_escalated` or `danger`.
    pub kind: String,
    /// `open`, `acknowledged` or `closed`.
    pub status: String,
    /// The child.
    pub child_id: String,
    /// What it says (Chinese).
    #[serde(default)]
    pub text: String,
    /// Everything else the server sent (name, village, dates...).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// An acknowledgement made on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The alert.
    pub alert_id: String,
    /// The note.
    #[serde(default)]
    pub note: String,
    /// When it was made on the phone, Unix milliseconds.
    pub at_ms: i64,
}

/// The server's answer to an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResult {
    /// The alert.
    pub alert_id: String,
    /// Whether it stands (also when the alert was acknowledged before).
    pub ok: bool,
    /// Why not: `alert_closed`, `region_forbidden`, `not_found`, `invalid_item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A varint item.
pub fn number_item(kind: u64, n: u64) -> Item {
    let mut payload = Vec::new();
    let mut v = n;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            payload.push(byte);
            break;
        }
        payload.push(byte | 0x80);
    }
    Item { kind, payload }
}

/// The number a varint item carries.
pub fn number_of(item: &Item) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, byte) in item.payload.iter().enumerate() {
        let shift = 7 * u32::try_from(i).ok()?;
        if shift >= 64 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (i + 1 == item.payload.len()).then_some(v);
        }
    }
    None
}

/// A JSON item.
pub fn json_item<T: Serialize>(kind: u64, value: &T) -> Item {
    Item {
        kind,
        payload: serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// The value a JSON item carries, if it parses.
pub fn json_of<T: for<'de> Deserialize<'de>>(item: &Item) -> Option<T> {
    serde_json::from_slice(&item.payload).ok()
}

/// What a phone keeps of alerts between syncs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBox {
    /// The last event number received.
    pub seq: u64,
    /// Alerts not closed, by id.
    pub alerts: BTreeMap<String, Alert>,
    /// Acknowledgements the server has not answered yet, by alert id.
    pub acks: BTreeMap<String, Ack>,
}

impl AlertBox {
    /// The items a request carries: where the phone is, and its pending acknowledgements.
    pub fn items(&self) -> Vec<Item> {
        let mut items = vec![number_item(AFTER, self.seq)];
        items.extend(self.acks.values().map(|a| json_item(ACK, a)));
        items
    }

    /// Takes what a response says of alerts; returns the items that are not about alerts.
    pub fn take(&mut self, items: Vec<Item>) -> Vec<Item> {
        let mut rest = Vec::new();
        for item in items {
            match item.kind {
                ALERT => {
                    if let Some(alert) = json_of::<Alert>(&item) {
                        if alert.status == "closed" {
                            self.alerts.remove(&alert.id);
                        } else {
                            self.alerts.insert(alert.id.clone(), alert);
                        }
                    }
                }
                UPTO => {
                    if let Some(n) = number_of(&item) {
                        self.seq = self.seq.max(n);
                    }
                }
                ACK_RESULT => {
                    if let Some(result) = json_of::<AckResult>(&item) {
                        self.acks.remove(&result.alert_id);
                    }
                }
                _ => rest.push(item),
            }
        }
        rest
    }

    /// Acknowledges an alert on the phone, offline: shown as acknowledged at once, and sent
    /// with the next sync.
    pub fn acknowledge(&mut self, alert_id: &str, note: &str, at_ms: i64) -> bool {
        let Some(alert) = self.alerts.get_mut(alert_id) else {
            return false;
        };
        alert.status = "acknowledged".into();
        self.acks.insert(
            alert_id.to_owned(),
            Ack {
                alert_id: alert_id.to_owned(),
                note: note.to_owned(),
                at_ms,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, seq: i64, status: &str) -> Item {
        json_item(
            ALERT,
            &serde_json::json!({"id": id, "seq": seq, "kind": "danger", "status": status,
                                "child_id": "c", "text": "t", "name": "李"}),
        )
    }

    #[test]
    fn numbers_round_trip_and_junk_is_refused() {
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(number_of(&number_item(UPTO, n)), Some(n));
        }
        let junk = Item {
            kind: UPTO,
            payload: vec![0x80, 0x80],
        };
        assert_eq!(number_of(&junk), None);
        let trailing = Item {
            kind: UPTO,
            payload: vec![1, 2],
        };
        assert_eq!(number_of(&trailing), None);
    }

    #[test]
    fn a_phone_keeps_open_alerts_drops_closed_ones_and_resends_acks_until_answered() {
        let mut inbox = AlertBox::default();
        let other = Item {
            kind: 99,
            payload: vec![1],
        };
        let rest = inbox.take(vec![
            alert("a", 3, "open"),
            alert("b", 4, "open"),
            number_item(UPTO, 4),
            other.clone(),
        ]);
        assert_eq!(rest, vec![other]);
        assert_eq!(inbox.seq, 4);
        assert_eq!(inbox.alerts["a"].rest["name"], "李");
        assert!(inbox.acknowledge("a", "on my way", 1000));
        assert!(!inbox.acknowledge("zzz", "", 1000));
        assert_eq!(inbox.alerts["a"].status, "acknowledged");
        let items = inbox.items();
        assert_eq!(number_of(&items[0]), Some(4));
        assert_eq!(
            json_of::<Ack>(&items[1]).map(|a| a.alert_id),
            Some("a".into())
        );
        // Not answered: sent again.
        inbox.take(vec![number_item(UPTO, 4)]);
        assert_eq!(inbox.items().len(), 2);
        inbox.take(vec![
            json_item(
                ACK_RESULT,
                &AckResult {
                    alert_id: "a".into(),
                    ok: true,
                    code: None,
                },
            ),
            alert("b", 6, "closed"),
            number_item(UPTO, 6),
        ]);
        assert!(inbox.acks.is_empty());
        assert!(!inbox.alerts.contains_key("b"));
        assert_eq!(inbox.seq, 6);
    }
}
