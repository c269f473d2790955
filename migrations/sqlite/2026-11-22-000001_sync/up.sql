-- Child files and the per-device sync memory of docs/PROTOCOL.md.

-- One row: the last sequence number issued. Updating it inside the syncing transaction
-- serialises the issue of numbers with the commit, so they become visible in order.
CREATE TABLE sync_seq (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO sync_seq (id, value) VALUES (1, 0);

-- A child file: a compacted Automerge snapshot plus the changes appended since.
CREATE TABLE documents (
    id TEXT PRIMARY KEY NOT NULL,
    village TEXT NOT NULL,
    seq BIGINT NOT NULL,
    snapshot BLOB NOT NULL,
    heads BLOB NOT NULL,
    chunk_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX documents_village_seq ON documents (village, seq);
CREATE INDEX documents_seq ON documents (seq);

CREATE TABLE document_chunks (
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (document_id, n)
);

-- What the server remembers of each device's sync.
CREATE TABLE sync_devices (
    device_id TEXT PRIMARY KEY NOT NULL,
    confirmed_seq BIGINT,
    confirmed_token BIGINT,
    pending_seq BIGINT,
    pending_token BIGINT,
    scope_fingerprint BIGINT NOT NULL
);

CREATE TABLE sync_peer_documents (
    device_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    known BLOB NOT NULL,
    pending_token BIGINT,
    pending_heads BLOB,
    dropping_token BIGINT,
    sync_state BLOB,
    PRIMARY KEY (device_id, document_id)
);
