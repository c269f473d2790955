//! The homevisit server: storage, and (with the server issue) the HTTP service, auth and
//! alerts. The `homevisit` binary is its command line.

pub mod store;
