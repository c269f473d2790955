-- What the server verifies of what phones send (issue 7).

-- The server's own time of receipt of every change it accepted, and from whom: the time a
-- change carries is the phone's clock, which can be wrong.
CREATE TABLE change_receipts (
    document_id TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (document_id, change_hash)
);

-- Who uploaded each photo (uploading it proves holding its bytes). A record may name only a
-- photo its author uploaded, or one a file the author may see already names.
CREATE TABLE blob_uploaders (
    sha256 TEXT NOT NULL,
    user_id TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, user_id)
);
INSERT INTO blob_uploaders (sha256, user_id, uploaded_at)
    SELECT sha256, uploaded_by, uploaded_at FROM blobs;
ALTER TABLE blobs DROP COLUMN uploaded_by;

-- Failed logins by username and by username and source address, kept alike for names that
-- exist and names that do not, so throttling tells no one which names exist. Backoff only:
-- no failure locks an account until an administrator acts.
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failed_at BIGINT NOT NULL,
    wait_until BIGINT NOT NULL,
    PRIMARY KEY (username, source)
);
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN last_failed_at;

-- A retry within the grace is answered with the same successor, derived from the token, so
-- whether a token was retried need not be kept.
ALTER TABLE refresh_tokens DROP COLUMN retried;
