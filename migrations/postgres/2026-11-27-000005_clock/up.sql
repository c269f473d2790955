-- Never read: a child's categories are computed for the day asked, from the file.
ALTER TABLE children DROP COLUMN categories;
