CREATE INDEX documents_seq ON documents (seq);
