//! A client of the homevisit API, as the phone speaks it: login, token refresh, sync and the
//! read APIs, over a [`Transport`]. [`crate::Phone`], the end-to-end tests and the benchmark use
//! it.

use crate::transport::{HttpRequest, Https, Transport};
use homevisit_sync_core::device::Device;
use homevisit_sync_core::sync::device::Outcome;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The message.
        message: String,
        /// Files a refused sync names: the device sets them aside.
        files: Vec<String>,
    },
    /// The request did not get an answer (network, TLS).
    #[error("transport: {0}")]
    Transport(String),
    /// Not logged in.
    #[error("not logged in")]
    NoSession,
    /// The device's store refused the response or could not make a request.
    #[error("device: {0}")]
    Device(#[from] homevisit_sync_core::device::DeviceError),
    /// The server kept asking for another round.
    #[error("sync did not settle in {0} rounds")]
    Unsettled(usize),
}

/// An answer: status, headers of interest, body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Size of the request line and headers sent, as HTTP/1.1 text.
    pub request_header_bytes: usize,
    /// Size of the status line and headers received, as HTTP/1.1 text.
    pub response_header_bytes: usize,
}

/// `Name: value\r\n` lines of headers.
fn header_len<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    headers.map(|(n, v)| n.len() + 2 + v.len() + 2).sum()
}

impl Reply {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of a JSON error body, if any.
    pub fn code(&self) -> Option<String> {
        self.json()["code"].as_str().map(str::to_owned)
    }

    /// The reply, or the server's refusal as [`ClientError::Api`].
    pub fn into_result(self) -> Result<Reply, ClientError> {
        if self.status < 400 {
            return Ok(self);
        }
        let json = self.json();
        Err(ClientError::Api {
            status: self.status,
            code: json["code"].as_str().unwrap_or("").to_owned(),
            message: json["message"].as_str().unwrap_or("").to_owned(),
            files: json["files"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Tokens from a login or refresh.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Session {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// The user id.
    pub user_id: String,
    /// The role key.
    pub role: String,
    /// The village-code prefixes the user may see and write.
    #[serde(default)]
    pub scope: Vec<String>,
    /// The device id.
    pub device_id: String,
    /// Seconds the access token is valid for from when it was issued.
    #[serde(default)]
    pub expires_in: i64,
}

/// Rounds a sync may take besides pages: fallback rounds settle in two or three.
pub(crate) const MAX_ROUNDS: usize = 64;
/// Pages a sync may take: a first sync of 100,000 files of 60 KB pages' worth each would
/// still be bounded, so a server that never stops saying "more" cannot hold a phone forever.
pub(crate) const MAX_PAGES: usize = 100_000;

/// What one sync took and carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP round trips.
    pub rounds: usize,
    /// Files whose changes went up (counted once per round that carried them).
    pub sent: usize,
    /// Files whose changes came down.
    pub received: usize,
}

/// A connection to one server, with a session once logged in.
pub struct Client {
    transport: Arc<dyn Transport>,
    /// The built-in stack, when it is the transport: the alert stream needs it.
    https: Option<Https>,
    base: String,
    /// The current session.
    pub session: Option<Session>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("logged_in", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl Client {
    /// A client of `base` (`https://host:port`) over the built-in HTTPS, trusting the system
    /// roots, or only the certificates in the PEM file `ca` when given.
    pub fn new(base: &str, ca: Option<&Path>) -> Result<Client, ClientError> {
        let pem = ca
            .map(|path| {
                std::fs::read(path).map_err(|e| transport(format!("{}: {e}", path.display())))
            })
            .transpose()?;
        Client::with_pem(base, pem.as_deref())
    }

    /// [`Client::new`] with the CA certificates given as PEM text.
    pub fn with_pem(base: &str, ca_pem: Option<&[u8]>) -> Result<Client, ClientError> {
        Ok(Client::with_https(
            base,
            Https::new(ca_pem).map_err(transport)?,
        ))
    }

    /// A client of `base` over a built-in HTTPS stack made before: clones share its pool of
    /// kept-alive connections and its TLS sessions.
    pub fn with_https(base: &str, https: Https) -> Client {
        Client {
            transport: Arc::new(https.clone()),
            https: Some(https),
            base: base.trim_end_matches('/').to_owned(),
            session: None,
        }
    }

    /// A client of `base` over the app's own transport.
    pub fn with_transport(base: &str, transport: Arc<dyn Transport>) -> Client {
        Client {
            transport,
            https: None,
            base: base.trim_end_matches('/').to_owned(),
            session: None,
        }
    }

    /// Sends one request; `token` adds `Authorization: Bearer`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, ClientError> {
        self.call_with(method, path, token, content_type, body, &[])
    }

    /// [`Client::call`] with extra headers.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut sent: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(t) = token {
            sent.push(("Authorization".into(), format!("Bearer {t}")));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            sent.push(("Content-Type".into(), content_type.to_owned()));
        }
        // The request line, our headers, and the ones a stack adds (Host, Content-Length),
        // with the blank line that ends them.
        let host = self.base.split("://").nth(1).unwrap_or_default();
        let request_header_bytes = method.len()
            + 1
            + path.len()
            + 11
            + header_len(sent.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            + 8
            + host.len()
            + 18
            + body.len().to_string().len()
            + 2;
        let response = self
            .transport
            .send(HttpRequest {
                method: method.to_owned(),
                url,
                headers: sent,
                body: body.to_vec(),
            })
            .map_err(transport)?;
        let response_header_bytes = "HTTP/1.1 200 OK\r\n".len()
            + header_len(
                response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            + 2;
        Ok(Reply {
            status: response.status,
            content_type: response
                .header("content-type")
                .unwrap_or_default()
                .to_owned(),
            body: response.body,
            request_header_bytes,
            response_header_bytes,
        })
    }

    /// POSTs JSON.
    pub fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Reply, ClientError> {
        self.call(
            "POST",
            path,
            token,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    /// The session's access token.
    pub fn access(&self) -> Result<&str, ClientError> {
        self.session
            .as_ref()
            .map(|s| s.access_token.as_str())
            .ok_or(ClientError::NoSession)
    }

    /// Logs in and keeps the session.
    pub fn login(
        &mut self,
        username: &str,
        password: &str,
        device_id: &str,
        device_name: &str,
    ) -> Result<&Session, ClientError> {
        self.start_session(
            "/api/v1/auth/login",
            &serde_json::json!({
                "username": username, "password": password,
                "device_id": device_id, "device_name": device_name,
            }),
        )
    }

    /// Posts to a token endpoint and keeps the session it answers with.
    fn start_session(&mut self, path: &str, body: &Value) -> Result<&Session, ClientError> {
        let reply = self.post_json(path, None, body)?.into_result()?;
        let session: Session = serde_json::from_slice(&reply.body).map_err(transport)?;
        Ok(self.session.insert(session))
    }

    /// Rotates the refresh token.
    pub fn refresh(&mut self) -> Result<&Session, ClientError> {
        let token = self
            .session
            .as_ref()
            .ok_or(ClientError::NoSession)?
            .refresh_token
            .clone();
        self.start_session(
            "/api/v1/auth/refresh",
            &serde_json::json!({ "refresh_token": token }),
        )
    }

    /// One sync round trip: the request frame out, the response frame back.
    pub fn sync(&self, frame: &[u8]) -> Result<Vec<u8>, ClientError> {
        let reply = self
            .call(
                "POST",
                "/api/v1/sync",
                Some(self.access()?),
                "application/vnd.homevisit.sync",
                frame,
            )?
            .into_result()?;
        Ok(reply.body)
    }

    /// Syncs a device until it is up to date (or told to wipe, which it then has done).
    /// Returns the outcome and the round trips it took.
    ///
    /// A file the server refuses (by naming it in its error) is set aside on the device, with
    /// its unsent work, and the rest syncs on: one bad file never blocks the others.
    pub fn sync_device(&self, device: &mut Device) -> Result<(Outcome, usize), ClientError> {
        let exchange = self.exchange(device)?;
        Ok((exchange.outcome, exchange.rounds))
    }

    /// [`Client::sync_device`], telling also how many files went each way.
    ///
    /// Pages of a long first sync do not count toward the bound on rounds: each moves the
    /// cursor on, and a county's supervisor may need hundreds.
    pub fn exchange(&self, device: &mut Device) -> Result<Exchange, ClientError> {
        let mut total = Exchange {
            outcome: Outcome::Again,
            rounds: 0,
            sent: 0,
            received: 0,
        };
        let mut unpaged = 0;
        while unpaged < MAX_ROUNDS && total.rounds < MAX_PAGES {
            let round = self.round(device)?;
            total.rounds += 1;
            total.sent += round.sent;
            total.received += round.received;
            if round.outcome != Outcome::Again {
                total.outcome = round.outcome;
                return Ok(total);
            }
            if !device.paging() {
                unpaged += 1;
            }
        }
        Err(ClientError::Unsettled(total.rounds))
    }

    /// One round trip of a sync, applied and stored: [`Outcome::Again`] when another follows
    /// (a page, a fallback round, or a file set aside after the server refused it).
    pub fn round(&self, device: &mut Device) -> Result<Exchange, ClientError> {
        let frame = device.sync_request()?;
        let sent = device.files_in_request();
        let answer = match self.sync(&frame) {
            Ok(answer) => answer,
            Err(ClientError::Api {
                status,
                code,
                message,
                files,
            }) if (400..500).contains(&status) && status != 401 && !files.is_empty() => {
                let mut set_aside = false;
                for id in files.iter().filter_map(|f| f.parse().ok()) {
                    set_aside |= device.quarantine(&id)?;
                }
                if set_aside {
                    return Ok(Exchange {
                        outcome: Outcome::Again,
                        rounds: 1,
                        sent,
                        received: 0,
                    });
                }
                // Nothing this device holds was named: the refusal stands as it came.
                return Err(ClientError::Api {
                    status,
                    code,
                    message,
                    files,
                });
            }
            Err(e) => return Err(e),
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let outcome = device.sync_receive(&answer, now_ms)?;
        Ok(Exchange {
            outcome,
            rounds: 1,
            sent,
            received: device.files_in_last_response(),
        })
    }

    /// GETs JSON with the session's token.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        let reply = self
            .call("GET", path, Some(self.access()?), "", &[])?
            .into_result()?;
        Ok(reply.json())
    }

    /// Opens the alert event stream, resuming after `last_event_id` when given.
    /// Only the built-in HTTPS streams: an app's own transport answers whole responses.
    pub fn alert_stream(&self, last_event_id: Option<i64>) -> Result<AlertStream, ClientError> {
        let url = format!("{}/api/v1/alerts/stream", self.base);
        let https = self.https.as_ref().ok_or_else(|| {
            ClientError::Transport("the alert stream needs the built-in HTTPS transport".into())
        })?;
        let mut request = https
            .agent()
            .get(&url)
            .header("Authorization", format!("Bearer {}", self.access()?))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        // A stream lasts as long as the server keeps it (15 minutes), not the agent's bound.
        let response = request
            .config()
            .timeout_global(None)
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .build()
            .call()
            .map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut response = response;
            let body = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(transport)?;
            return Err(Reply {
                status,
                content_type: "application/json".into(),
                body,
                request_header_bytes: 0,
                response_header_bytes: 0,
            }
            .into_result()
            .err()
            .unwrap_or(ClientError::Transport(format!("HTTP {status}"))));
        }
        Ok(AlertStream {
            lines: std::io::BufReader::new(Box::new(response.into_body().into_reader())),
        })
    }
}

/// Server-sent events of alerts, read as they come.
pub struct AlertStream {
    lines: std::io::BufReader<Box<dyn std::io::Read + Send>>,
}

/// One event of the alert stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// Its number: resume after it with `Last-Event-ID`.
    pub id: i64,
    /// The alert as it is now, with `change` (`raised`, `acknowledged`, `closed`).
    pub alert: Value,
}

impl AlertStream {
    /// The next event, skipping comments; `None` when the server ended the stream.
    pub fn next_event(&mut self) -> Result<Option<AlertEvent>, ClientError> {
        use std::io::BufRead;
        let (mut id, mut data) = (None, String::new());
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line).map_err(transport)? == 0 {
                return Ok(None);
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if let (Some(id), false) = (id, data.is_empty()) {
                    let alert = serde_json::from_str(&data).map_err(transport)?;
                    return Ok(Some(AlertEvent { id, alert }));
                }
                (id, data) = (None, String::new());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
    }
}
