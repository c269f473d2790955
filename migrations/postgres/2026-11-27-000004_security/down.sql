ALTER TABLE refresh_tokens ADD COLUMN retried BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN last_failed_at BIGINT;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
DROP TABLE login_failures;
ALTER TABLE blobs ADD COLUMN uploaded_by TEXT NOT NULL DEFAULT '';
UPDATE blobs SET uploaded_by = COALESCE(
    (SELECT user_id FROM blob_uploaders u WHERE u.sha256 = blobs.sha256
     ORDER BY uploaded_at LIMIT 1), '');
DROP TABLE blob_uploaders;
DROP TABLE change_receipts;
