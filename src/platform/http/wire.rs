//! The connection under the HTTP/1 parser, and the server assembled on it.
//!
//! actix-http answers a request it cannot parse from inside its dispatcher, before any
//! middleware or service runs: a head over its fixed 128 KiB buffer gets `431` and a
//! malformed head `400`, both with an empty body and no way to configure either. Every other
//! error of the API is problem+json, so clients (and the fuzzers) would need a special case
//! for these two. [`ProblemWire`] wraps each accepted socket and, when the dispatcher's next
//! write is exactly one of those bare error heads, writes the same status as problem+json
//! instead. The dispatcher closes the connection after either, so nothing follows that could
//! be misframed.
//!
//! The server is built from `actix_server` and `HttpService` rather than `HttpServer`, whose
//! sockets cannot be wrapped; [`serve`] keeps `HttpServer`'s defaults (HTTP/1.x on plaintext,
//! keep-alive 5 s, request head timeout 5 s, disconnect timeout 1 s, graceful shutdown of idle
//! keep-alive connections).

use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_http::{HttpService, Protocol, Request};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Response};
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::platform::error::ApiError;

/// How the server is run: what `server.*` settings say.
pub struct ServeOptions {
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
}

/// Serves `factory`'s app on `listener` over [`ProblemWire`] connections.
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    options: &ServeOptions,
    factory: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let mut builder = Server::build()
        .shutdown_timeout(options.shutdown_timeout_secs)
        // actix treats SIGINT as a forced stop; `run_until_stopped` makes both signals graceful.
        .disable_signals();
    if options.workers > 0 {
        builder = builder.workers(options.workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    builder = builder.listen("basalt-http", listener, move || {
        let shutdown = shutdown.clone();
        let app = factory()
            .into_factory()
            .map_err(|err| err.into().error_response());
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .client_request_timeout(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            .h1_allow_half_closed(true)
            .local_addr(addr)
            .finish(map_config(app, move |_| {
                // The host a request without a Host header is taken to name; `HttpServer`
                // uses the bound address the same way.
                AppConfig::__priv_test_new(false, addr.to_string(), addr)
            }));
        fn_service(|io: TcpStream| async move {
            // Streamed bodies go out in several writes (headers, then chunks); with Nagle
            // on, the second waits for the client's delayed ACK, ~40 ms on a small download.
            let _ = io.set_nodelay(true);
            let peer = io.peer_addr().ok();
            Ok::<_, actix_http::error::DispatchError>((ProblemWire::new(io), Protocol::Http1, peer))
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}

/// A socket whose parser-level error answers are rewritten as problem+json.
///
/// Only the connection's first write is looked at: before it, nothing has been sent, so a
/// write that is exactly a bare error head can only be the parser's answer. Any later write
/// may be part of a body (a stored file can hold any bytes, an error head included), and
/// telling which would mean re-framing every response; so an error on a kept-alive
/// connection, after an earlier answer, keeps actix's bare head.
pub struct ProblemWire<T> {
    io: T,
    /// Nothing has been written yet.
    fresh: bool,
    /// The problem response being written in place of the bare one, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemWire<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            fresh: true,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemWire<T> {
    /// Writes out the replacement; ready once all of it is written.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((bytes, written)) = &mut self.replacement {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemWire<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemWire<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            match parser_problem(buf).filter(|_| this.fresh) {
                None => {
                    let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
                    this.fresh &= written == 0;
                    return Poll::Ready(Ok(written));
                }
                Some(problem) => this.replacement = Some((problem, 0)),
            }
        }
        // The connection closes after a parser error: whatever else the dispatcher has for
        // it is dropped with the bare head it replaces.
        match this.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The problem+json response for `buf` when it is exactly a bare error head actix-http's
/// parser answers with: status 400 or 431, `content-length: 0`, no content type, nothing
/// after the head. Responses of the app always carry a body and a content type.
fn parser_problem(buf: &[u8]) -> Option<Vec<u8>> {
    let status = match buf.get(..13)? {
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => StatusCode::BAD_REQUEST,
        _ => return None,
    };
    if !buf.ends_with(b"\r\n\r\n") || buf.len() > 512 {
        return None;
    }
    let head = String::from_utf8_lossy(buf).to_ascii_lowercase();
    if !head.contains("\r\ncontent-length: 0\r\n") || head.contains("\r\ncontent-type:") {
        return None;
    }
    let error = if status == StatusCode::BAD_REQUEST {
        ApiError::new(status, "malformed_request").detail(
            "The request is not valid HTTP/1.1: its request line or a header cannot be parsed",
        )
    } else {
        ApiError::new(status, "request_head_too_large").detail(
            "The request head is too large: over 128 KiB, or more than 96 headers; send large values in the body",
        )
    };
    let body = serde_json::to_vec(&error.problem()).ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         x-content-type-options: nosniff\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{ProblemWire, parser_problem};
    use tokio::io::AsyncWriteExt;

    const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";

    async fn sent(writes: &[&[u8]]) -> Vec<u8> {
        let mut wire = ProblemWire::new(Vec::new());
        for w in writes {
            wire.write_all(w).await.unwrap();
        }
        wire.flush().await.unwrap();
        wire.io
    }

    /// A stored file may hold exactly a bare error head: sent as a body chunk after its
    /// response's head, it goes out byte for byte (a review found downloads rewritten).
    #[tokio::test]
    async fn only_a_connections_first_write_can_be_rewritten() {
        let first = sent(&[BARE_400]).await;
        assert!(first.starts_with(b"HTTP/1.1 400 "));
        assert!(String::from_utf8_lossy(&first).contains("malformed_request"));

        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 47\r\n\r\n";
        let download = sent(&[head, BARE_400, b"HTTP/1.1 200 OK\r\n"]).await;
        assert_eq!(
            download,
            [&head[..], BARE_400, b"HTTP/1.1 200 OK\r\n"].concat()
        );
    }

    #[test]
    fn only_bare_parser_heads_are_rewritten() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 30 Nov 2026 23:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(parser_problem(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("application/problem+json"), "{out}");
        assert!(
            out.ends_with('}') && out.contains("\"request_head_too_large\""),
            "{out}"
        );

        // An app's own 400 has a body and a type; a body chunk that merely starts like a
        // head but carries more is left alone.
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\ncontent-type: application/problem+json\r\n\r\n{}";
        assert!(parser_problem(app).is_none());
        let typed =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-type: text/plain\r\n\r\n";
        assert!(parser_problem(typed).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(parser_problem(ok).is_none());
    }
}
