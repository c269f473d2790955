//! A sync's header bytes over HTTP/2, counted on the wire under TLS: what HPACK leaves of the
//! request and response headers once a connection is warm, and what a new connection's first
//! request costs (the HTTP/2 preface and settings included).

use anyhow::{Context as _, Result, bail};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Header and framing bytes of one round trip, both ways, bodies excluded.
pub struct H2Headers {
    /// The first request on a new connection, with the connection's preface and settings.
    pub first: usize,
    /// A request on the warm connection, on average.
    pub warm: f64,
}

/// A stream that counts the bytes through it.
struct Counting<S> {
    inner: S,
    read: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::SeqCst);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n, Ordering::SeqCst);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sends `frame` to `/api/v1/sync` `rounds` times over one HTTP/2 connection to the server at
/// `base` (`https://localhost:PORT`) and counts what is not body.
pub fn sync_headers(
    base: &str,
    ca: &std::path::Path,
    token: &str,
    frame: &[u8],
    rounds: usize,
) -> Result<H2Headers> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(base, ca, token, frame, rounds.max(2)))
}

async fn run(
    base: &str,
    ca: &std::path::Path,
    token: &str,
    frame: &[u8],
    rounds: usize,
) -> Result<H2Headers> {
    use rustls::pki_types::pem::PemObject;
    let authority = base.strip_prefix("https://").context("an https URL")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(authority.replace("localhost", "127.0.0.1")).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        bail!("the server did not agree to HTTP/2");
    }
    let (read, written) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counting = Counting {
        inner: tls,
        read: read.clone(),
        written: written.clone(),
    };
    let (client, connection) = h2::client::handshake(counting).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Each round trip's bytes run from its start to the next one's: frames the connection
    // task sends late (window updates for a body read) land in the next interval, and over
    // many rounds the shifts cancel. One round more than counted closes the last interval.
    // The first interval starts at zero, with the connection's preface and settings.
    let total = || read.load(Ordering::SeqCst) + written.load(Ordering::SeqCst);
    let mut marks = vec![0];
    let mut bodies = Vec::new();
    for round in 0..=rounds {
        if round > 0 {
            marks.push(total());
        }
        let mut client = client.clone().ready().await?;
        let request = http::Request::post(format!("{base}/api/v1/sync"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/vnd.homevisit.sync")
            .body(())?;
        let (response, mut body_out) = client.send_request(request, false)?;
        body_out.send_data(bytes::Bytes::copy_from_slice(frame), true)?;
        let response = response.await?;
        if response.status() != 200 {
            bail!("HTTP/2 sync answered {}", response.status());
        }
        let mut body = response.into_body();
        let mut down = 0;
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            down += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        bodies.push(frame.len() + down);
    }
    let costs: Vec<usize> = marks
        .windows(2)
        .zip(&bodies)
        .map(|(m, body)| (m[1] - m[0]).saturating_sub(*body))
        .collect();
    let warm = &costs[1..];
    Ok(H2Headers {
        first: costs[0],
        warm: warm.iter().sum::<usize>() as f64 / warm.len() as f64,
    })
}
