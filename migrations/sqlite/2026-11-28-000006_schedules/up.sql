-- Each served child's schedules as of the date they were evaluated: what lists page through
-- in SQL and what alerts are raised from. Kept by every sync that touches the child, in the
-- same transaction, and by the job that re-evaluates everyone as days pass.
CREATE TABLE schedules (
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    every TEXT NOT NULL,
    last_date TEXT,
    due TEXT NOT NULL,
    status TEXT NOT NULL,
    days_overdue INTEGER NOT NULL,
    PRIMARY KEY (child_id, kind)
);
CREATE INDEX schedules_status_due ON schedules (status, due);

-- The categories and risk flags in force on the evaluation date.
CREATE TABLE child_labels (
    child_id TEXT NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (child_id, label, value)
);
CREATE INDEX child_labels_value ON child_labels (label, value);

-- The worst schedule status (or not_served), and the date it was evaluated for.
ALTER TABLE children ADD COLUMN status TEXT NOT NULL DEFAULT 'not_served';
ALTER TABLE children ADD COLUMN evaluated_on TEXT;
CREATE INDEX children_status ON children (status);

-- When everyone was last evaluated, and under which rules: a new day or new rules start the
-- job again.
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY NOT NULL,
    evaluated_on TEXT NOT NULL,
    rules TEXT NOT NULL
);
