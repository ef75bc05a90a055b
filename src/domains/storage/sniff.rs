//! What a file really is, judged from its first bytes rather than from what the client says,
//! and what its name may be.

/// How many leading bytes are looked at (enough for every signature `infer` knows, and for
/// the dimensions in most image headers).
pub const HEAD_BYTES: usize = 128 * 1024;

/// A file name safe to store and to put in a `Content-Disposition`: the last path segment,
/// without control characters, quotes or leading dots, at most 255 bytes; `file` when
/// nothing is left.
pub fn sanitize_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "file".into() } else { out }
}

/// The extension, lower-cased, if the name has one.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The MIME type the bytes show. Types with a signature are recognised by it; otherwise UTF-8
/// text takes the type its extension names when that is a text type (or `text/plain`), and
/// anything else is `application/octet-stream`.
pub fn sniff(head: &[u8], name: &str) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    // A multi-byte character may be cut at the end of the head: check up to it.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    };
    if valid && !head.contains(&0) {
        let guessed = mime_guess::from_path(name)
            .first_raw()
            .unwrap_or("text/plain");
        if guessed.starts_with("text/")
            || matches!(
                guessed,
                "application/json" | "application/xml" | "image/svg+xml"
            )
        {
            return guessed.to_owned();
        }
        return "text/plain".into();
    }
    "application/octet-stream".into()
}

/// Whether the name's extension promises a different kind of file than the bytes are (an
/// executable named `.png`). Extensions nobody knows promise nothing.
pub fn disguised(name: &str, sniffed: &str) -> bool {
    let Some(ext) = extension(name) else {
        return false;
    };
    let promised: Vec<&str> = mime_guess::from_ext(&ext).iter_raw().collect();
    // `.bin` and the like promise nothing but "bytes".
    if promised.is_empty()
        || promised.contains(&sniffed)
        || promised.contains(&"application/octet-stream")
    {
        return false;
    }
    let family = |m: &str| m.split('/').next().unwrap_or_default().to_owned();
    // Text of any flavour behind a text-ish extension is fine (`.csv` read as text/plain).
    let texty = |m: &str| {
        m.starts_with("text/")
            || matches!(m, "application/json" | "application/xml" | "image/svg+xml")
    };
    if texty(sniffed) && promised.iter().any(|p| texty(p)) {
        return false;
    }
    // Same family (an image/jpeg named .jpe, say) is not a disguise; anything else is.
    !promised
        .iter()
        .any(|p| family(p) == family(sniffed) && sniffed != "application/octet-stream")
}

/// `image/*`-style patterns and exact types; an empty list allows everything.
pub fn type_allowed(allowed: &[String], mime: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| {
            a == mime
                || a == "*/*"
                || a.strip_suffix("/*")
                    .is_some_and(|family| mime.split('/').next() == Some(family))
        })
}

pub fn extension_allowed(allowed: &[String], name: &str) -> bool {
    allowed.is_empty()
        || extension(name).is_some_and(|ext| {
            allowed
                .iter()
                .any(|a| a.trim_start_matches('.').eq_ignore_ascii_case(&ext))
        })
}

/// Types a browser may show in place; everything else downloads as an attachment, so an
/// uploaded page or script never runs on the API's origin.
pub fn inline_safe(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg"
            | "image/png"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "application/pdf"
            | "text/plain"
    ) || mime.starts_with("video/")
        || mime.starts_with("audio/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_controls() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\a\\evil.exe"), "evil.exe");
        assert_eq!(sanitize_name("..\u{0}hidden\r\n.txt"), "hidden.txt");
        assert_eq!(sanitize_name("a\"b<c>.png"), "abc.png");
        assert_eq!(sanitize_name("/"), "file");
        assert!(sanitize_name(&"é".repeat(300)).len() <= 255);
    }

    #[test]
    fn bytes_decide_the_type() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(sniff(&png, "photo.jpg"), "image/png");
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert_eq!(sniff(&elf, "cat.png"), "application/x-executable");
        assert_eq!(sniff(b"a,b\n1,2\n", "data.csv"), "text/csv");
        assert_eq!(sniff(b"hello", "notes"), "text/plain");
        assert_eq!(
            sniff(&[0, 159, 146, 150], "blob.bin"),
            "application/octet-stream"
        );
    }

    #[test]
    fn disguises_are_caught() {
        assert!(disguised("cat.png", "application/x-executable"));
        assert!(disguised("report.pdf", "text/html"));
        assert!(!disguised("cat.png", "image/png"));
        assert!(!disguised("photo.jpg", "image/jpeg"));
        assert!(!disguised("data.csv", "text/plain"));
        assert!(!disguised("archive.weird", "application/zip"));
        assert!(!disguised("blob.bin", "text/plain"));
    }

    #[test]
    fn patterns_allow_families() {
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(type_allowed(&allowed, "image/webp"));
        assert!(type_allowed(&allowed, "application/pdf"));
        assert!(!type_allowed(&allowed, "application/x-executable"));
        assert!(type_allowed(&[], "anything/at-all"));
        assert!(extension_allowed(&[".PNG".into()], "x.png"));
        assert!(!extension_allowed(&["png".into()], "x.exe"));
    }
}
