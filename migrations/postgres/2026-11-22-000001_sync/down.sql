DROP TABLE sync_peer_documents;
DROP TABLE sync_devices;
DROP TABLE document_chunks;
DROP TABLE documents;
DROP TABLE sync_seq;
