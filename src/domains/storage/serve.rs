//! Sending stored bytes back, for every download route: one `Range` (206, or 416 past the
//! end), `ETag` with `If-None-Match` (304), caching by who may read, and headers that keep
//! uploaded content from running as a page of the API's origin.

use std::ops::Range;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use anyhow::Context;

use super::access::Target;
use super::error::StorageError;
use super::model::DownloadParams;
use super::repo::{FileRow, VersionRow};
use super::sniff;
use super::state::StorageState;

/// One object to send.
pub struct Object<'a> {
    pub key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    /// Quoted.
    pub etag: String,
    pub name: &'a str,
    /// Readable by anyone (shared caches may keep it).
    pub public: bool,
    pub force_attachment: bool,
}

/// A run of ASCII digits as a byte position; `u64::MAX` for one too large to hold, which is
/// past the end of any object (RFC 9110 §14.1.1 puts no bound on the digits).
fn position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

/// The byte range asked for: `None` for the whole object (no header, or one this server
/// does not serve, such as several ranges, or one that does not parse, which RFC 9110 says
/// to ignore), `Err` when it starts past the end. A last position past the end is clamped
/// to it, as RFC 9110 §14.1.2 says, however many digits it has.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    if position(start) == Some(u64::MAX) {
        // A first position too large for u64 is past the end of anything stored.
        return Err(());
    }
    let range = match (position(start), position(end)) {
        (Some(s), Some(e)) if s <= e => s..e.saturating_add(1).min(size),
        (Some(s), None) if end.is_empty() => s..size,
        (None, Some(n)) if start.is_empty() && n > 0 => size.saturating_sub(n)..size,
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// Every byte but RFC 3986's unreserved characters as `%XX` (for header parameters and URL
/// path segments alike).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// RFC 6266 / 5987: a plain ASCII fallback and the exact UTF-8 name.
fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    )
}

/// Streams `o` (or the range asked for) with the headers above.
pub async fn serve(
    req: &HttpRequest,
    state: &StorageState,
    o: Object<'_>,
) -> Result<HttpResponse, StorageError> {
    let mut res = HttpResponse::build(StatusCode::OK);
    let etag = HeaderValue::from_str(&o.etag).context("ETag")?;
    res.insert_header((header::ETAG, etag));
    res.insert_header((header::ACCEPT_RANGES, "bytes"));
    res.insert_header((
        header::CACHE_CONTROL,
        if o.public {
            "public, max-age=300"
        } else {
            "private, no-cache"
        },
    ));
    // Served bytes are never a page or a script of this origin.
    res.insert_header((
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    ));
    res.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    let kind = if !o.force_attachment && sniff::inline_safe(o.content_type) {
        "inline"
    } else {
        "attachment"
    };
    if let Ok(v) = HeaderValue::from_str(&disposition(kind, o.name)) {
        res.insert_header((header::CONTENT_DISPOSITION, v));
    }
    let none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == o.etag || t.trim() == "*")) {
        return Ok(res.status(StatusCode::NOT_MODIFIED).finish());
    }
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, o.size)
        .map_err(|()| StorageError::range_not_satisfiable(o.size))?;
    res.insert_header((header::CONTENT_TYPE, o.content_type));
    let length = match &range {
        Some(r) => {
            res.status(StatusCode::PARTIAL_CONTENT);
            res.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, o.size),
            ));
            r.end - r.start
        }
        None => o.size,
    };
    res.no_chunking(length);
    let body = state.store.read(o.key, range).await?;
    Ok(res.streaming(body))
}

/// Sends one version of a file.
pub async fn serve_version(
    req: &HttpRequest,
    state: &StorageState,
    t: &Target,
    file: &FileRow,
    v: &VersionRow,
    params: &DownloadParams,
) -> Result<HttpResponse, StorageError> {
    let o = Object {
        key: &v.object_key,
        size: v.size as u64,
        content_type: &v.content_type,
        etag: format!("\"{}\"", v.sha256),
        name: &file.name,
        public: t.bucket.public,
        force_attachment: params.disposition.as_deref() == Some("attachment"),
    };
    serve(req, state, o).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some(50..100)));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=9-1"), 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
        // Positions too large for u64: the end clamps, a start is past the end.
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551615"), 100),
            Ok(Some(0..100))
        );
        assert_eq!(
            parse_range(Some("bytes=0-99999999999999999999999"), 100),
            Ok(Some(0..100))
        );
        assert_eq!(
            parse_range(Some("bytes=99999999999999999999999-"), 100),
            Err(())
        );
        assert_eq!(
            parse_range(Some("bytes=-99999999999999999999999"), 100),
            Ok(Some(0..100))
        );
        assert_eq!(
            parse_range(Some("bytes=99999999999999999999999-5"), 100),
            Err(())
        );
        assert_eq!(parse_range(Some("bytes=+1-5"), 100), Ok(None));
    }

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(
            disposition("inline", "a b.png"),
            "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png"
        );
        assert!(
            disposition("attachment", "é\".txt").starts_with("attachment; filename=\"__.txt\"")
        );
    }
}
