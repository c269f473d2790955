//! Authentication: short-lived signed access tokens (and, with login, refresh tokens).

pub mod tokens;
