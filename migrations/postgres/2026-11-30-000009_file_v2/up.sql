-- What the supervisor's list filters by from the file's version-2 parts, projected at every
-- merge as the other columns are: the school status in force, the day from which a child in
-- entrusted care counts as without a parent's weekly contact (seed 003), and the earliest
-- review date of an open help plan. Dates are YYYY-MM-DD text, compared as text.
ALTER TABLE children ADD COLUMN school_status TEXT;
ALTER TABLE children ADD COLUMN care_lapses_on TEXT;
ALTER TABLE children ADD COLUMN plan_review_on TEXT;
