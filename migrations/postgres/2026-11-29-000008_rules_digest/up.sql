-- What the rules engine reads of each file (sync-core's rules digest: dates, assertions and
-- the latest record of each kind, about a hundred bytes), written with the projection, so the
-- job re-evaluates a province from one row per child instead of every record.
ALTER TABLE children ADD COLUMN rules_digest BYTEA;
-- A hash of the stored evaluation (schedules, statuses, labels, escalation): the job rewrites
-- a child's rows, and reconciles its alerts, only when a fresh evaluation hashes differently.
ALTER TABLE children ADD COLUMN evaluation_hash BIGINT;
-- The same of its labels alone: a child whose status moved keeps its label rows.
ALTER TABLE children ADD COLUMN labels_hash BIGINT;
-- Alerts look up a child's live danger records; most records are not dangers, and without
-- this every record of every evaluated child is read to find the few that are.
CREATE INDEX child_records_danger ON child_records (child_id) WHERE danger AND NOT voided;
