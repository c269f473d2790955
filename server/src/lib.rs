//! The homevisit server: settings, TLS, the HTTP service and storage. The `homevisit` binary is
//! its command line.

pub mod api;
pub mod app;
pub mod auth;
pub mod demo;
pub mod files;
pub mod log;
pub mod metrics;
pub mod service;
pub mod settings;
pub mod state;
pub mod store;
pub mod tls;
