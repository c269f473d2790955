-- Alerts: what supervisors and counties are told (docs/ALERTS.md). One row per child, kind
-- and subject (a schedule kind and its due date, or a danger record): the unique key is what
-- keeps a replayed sync or two instances of the job from raising one twice.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    village TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Schedule alerts: the record kind that is due, and when.
    schedule_kind TEXT,
    due TEXT,
    -- The record the alert is about: for a schedule alert the last qualifying record when it
    -- was raised (a newer one means the visit happened); for a danger alert the danger record.
    record_date TEXT,
    danger_kind TEXT,
    status TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    closed_at BIGINT,
    -- Who closed it, and the outcome (处理结果); closed by the system: NULL, and the reason.
    closed_by TEXT,
    outcome TEXT,
    UNIQUE (child_id, kind, subject)
);
CREATE INDEX alerts_status_village ON alerts (status, village);
CREATE INDEX alerts_village_raised ON alerts (village, raised_at);

-- Every raise and change, numbered in commit order: the history of an alert, and what the
-- event stream resumes from (Last-Event-ID is a seq).
CREATE TABLE alert_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT,
    note TEXT
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, seq);

-- The last event number issued. As with sync_seq, updating it last in the raising
-- transaction serialises issue with commit, so numbers become visible in order.
CREATE TABLE alert_seq (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO alert_seq (id, value) VALUES (1, 0);

-- The webhook outbox, written in the transaction that raises the alert. A row is one event
-- for one receiver; group-robot rows are sent in digests (several rows, one message), whose
-- id is the delivery id a receiver sees.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    village TEXT NOT NULL,
    digest TEXT,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX deliveries_pending ON deliveries (webhook, delivered_at, failed_at, next_at);
CREATE INDEX deliveries_digest ON deliveries (digest);

-- What a danger record found (comma-separated keys), for the alert it raises.
ALTER TABLE child_records ADD COLUMN danger_found TEXT;

-- An open danger report whose kind must go to the police and records no police report (seed
-- 002 item 8): the county's list of cases to follow up.
ALTER TABLE children ADD COLUMN police_unreported BOOLEAN NOT NULL DEFAULT FALSE;
