DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
DROP TABLE child_attributes;
DROP TABLE child_records;
DROP TABLE children;
ALTER TABLE users DROP COLUMN last_failed_at;
DROP TABLE refresh_tokens;
DROP TABLE devices;
