-- Every read of documents by seq is scoped to villages: (village, seq) serves it, and a
-- seq-only index tempted SQLite's planner into scanning the county's recent changes for a
-- township's daily sync. One index fewer to update on every merge, too.
DROP INDEX documents_seq;
