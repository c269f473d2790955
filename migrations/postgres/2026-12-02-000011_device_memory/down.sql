ALTER TABLE sync_devices DROP COLUMN memory;
