ALTER TABLE children DROP COLUMN police_unreported;
ALTER TABLE child_records DROP COLUMN danger_found;
DROP TABLE deliveries;
DROP TABLE alert_seq;
DROP TABLE alert_events;
DROP TABLE alerts;
