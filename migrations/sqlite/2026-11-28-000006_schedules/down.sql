DROP TABLE evaluations;
DROP INDEX children_status;
ALTER TABLE children DROP COLUMN evaluated_on;
ALTER TABLE children DROP COLUMN status;
DROP TABLE child_labels;
DROP TABLE schedules;
