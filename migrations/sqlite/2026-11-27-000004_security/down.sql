ALTER TABLE blobs ADD COLUMN uploaded_by TEXT NOT NULL DEFAULT '';
UPDATE blobs SET uploaded_by = COALESCE(
    (SELECT user_id FROM blob_uploaders u WHERE u.sha256 = blobs.sha256
     ORDER BY uploaded_at LIMIT 1), '');
DROP TABLE blob_uploaders;
DROP TABLE change_receipts;
