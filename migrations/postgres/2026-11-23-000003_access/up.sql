-- Devices and refresh tokens (login), the relational projection of child files, and the
-- append-only audit log of reads.

-- A phone registered at login. A revoked device is told to wipe itself at its next contact.
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

-- Refresh tokens, by the SHA-256 of the token (the token itself is never stored). A login
-- starts a family; each refresh spends one token and issues its successor.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT,
    successor TEXT,
    retried BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- When a throttled account may try again.
ALTER TABLE users ADD COLUMN last_failed_at BIGINT;

-- The projection of each child file, rebuilt from the document after every merge.
CREATE TABLE children (
    id TEXT PRIMARY KEY NOT NULL,
    village TEXT NOT NULL,
    name TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    categories TEXT NOT NULL,
    last_home_visit TEXT,
    danger_open BOOLEAN NOT NULL DEFAULT FALSE,
    seq BIGINT NOT NULL
);
CREATE INDEX children_village ON children (village);

CREATE TABLE child_records (
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    date TEXT NOT NULL,
    author TEXT NOT NULL,
    voided BOOLEAN NOT NULL,
    danger BOOLEAN NOT NULL,
    PRIMARY KEY (child_id, record_id)
);

CREATE TABLE child_attributes (
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    assertion_id TEXT NOT NULL,
    attr TEXT NOT NULL,
    value TEXT NOT NULL,
    present BOOLEAN NOT NULL,
    effective TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    author TEXT NOT NULL,
    PRIMARY KEY (child_id, assertion_id)
);

-- Which photos each file refers to: a photo is visible to exactly those who may see a file
-- that refers to it.
CREATE TABLE child_photos (
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (child_id, sha256)
);
CREATE INDEX child_photos_sha256 ON child_photos (sha256);

-- Photos received and verified; the bytes live in the blob store (DATA_DIR/blobs).
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL
);

-- Who read which child file, when, from where. The triggers refuse every change to a row
-- once written: the application can add to the log but not rewrite it.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    child_id TEXT,
    village TEXT,
    remote TEXT NOT NULL
);
CREATE INDEX audit_log_child ON audit_log (child_id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
