-- A device's memory of every file it holds, in one value (sync_core::sync::peers): a sync
-- reads and writes it with its cursors, in one statement each. The rows of
-- sync_peer_documents are moved into it by a device's next sync, and deleted then.
ALTER TABLE sync_devices ADD COLUMN memory BYTEA;
