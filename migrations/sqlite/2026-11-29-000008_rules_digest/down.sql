DROP INDEX child_records_danger;
ALTER TABLE children DROP COLUMN labels_hash;
ALTER TABLE children DROP COLUMN evaluation_hash;
ALTER TABLE children DROP COLUMN rules_digest;
