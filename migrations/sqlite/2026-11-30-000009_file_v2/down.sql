ALTER TABLE children DROP COLUMN plan_review_on;
ALTER TABLE children DROP COLUMN care_lapses_on;
ALTER TABLE children DROP COLUMN school_status;
