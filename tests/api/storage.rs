//! The storage domain through HTTP, on local disk and on a real S3-compatible server (moto,
//! started by `scripts/test.sh`): uploads, downloads, ranges, signed URLs, versions,
//! variants, resumable uploads, quotas, grants and what attackers send.

use std::io::Cursor;
use std::time::Duration;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::helpers::{TestApp, error_fields, eventually, problem, spawn_app_with, statuses_of};

/// A test per backend running `$check` (an async fn taking a `Backend`).
macro_rules! on_both_backends {
    ($check:ident: $local:ident, $s3:ident) => {
        #[tokio::test]
        async fn $local() {
            $check(Backend::Local).await;
        }

        #[tokio::test]
        async fn $s3() {
            $check(Backend::S3).await;
        }
    };
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    S3,
}

/// An app with its own storage: a fresh directory, or a fresh bucket on the S3 server.
struct Storage {
    app: TestApp,
    backend: Backend,
    dir: std::path::PathBuf,
    s3_bucket: String,
}

fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

async fn storage(backend: Backend, extra: &[(&str, &str)]) -> Storage {
    let dir = std::env::temp_dir().join(format!("basalt-storage-{}", Uuid::new_v4().simple()));
    let s3_bucket = format!("basalt-{}", Uuid::new_v4().simple());
    let dir_s = dir.to_string_lossy().into_owned();
    let endpoint = s3_endpoint();
    let mut env: Vec<(&str, &str)> = vec![
        ("BASALT__STORAGE__LOCAL_DIR", &dir_s),
        ("BASALT__STORAGE__GC_INTERVAL_MS", "200"),
    ];
    if let Backend::S3 = backend {
        let created = crate::helpers::client()
            .put(format!("{endpoint}/{s3_bucket}"))
            .send()
            .await
            .expect("S3 test server (scripts/test.sh starts moto)");
        assert!(
            created.status().is_success(),
            "create S3 bucket: {}",
            created.status()
        );
        env.extend([
            ("BASALT__STORAGE__BACKEND", "s3"),
            ("BASALT__STORAGE__S3_BUCKET", s3_bucket.as_str()),
            ("BASALT__STORAGE__S3_ENDPOINT", endpoint.as_str()),
            ("BASALT__STORAGE__S3_ALLOW_HTTP", "true"),
            ("BASALT__STORAGE__S3_ACCESS_KEY_ID", "test"),
            ("BASALT__STORAGE__S3_SECRET_ACCESS_KEY", "test"),
        ]);
    }
    env.extend_from_slice(extra);
    let app = spawn_app_with(&env).await;
    Storage {
        app,
        backend,
        dir,
        s3_bucket,
    }
}

impl Storage {
    /// Every object the backend holds.
    async fn objects(&self) -> Vec<String> {
        match self.backend {
            Backend::Local => {
                fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
                    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                        let path = entry.path();
                        if path.is_dir() {
                            walk(&path, out);
                        } else {
                            out.push(path.to_string_lossy().into_owned());
                        }
                    }
                }
                let mut out = Vec::new();
                walk(&self.dir, &mut out);
                out
            }
            Backend::S3 => {
                let xml = crate::helpers::client()
                    .get(format!("{}/{}?list-type=2", s3_endpoint(), self.s3_bucket))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                xml.split("<Key>")
                    .skip(1)
                    .filter_map(|k| k.split("</Key>").next())
                    .map(str::to_owned)
                    .collect()
            }
        }
    }

    async fn objects_become(&self, n: usize) -> bool {
        eventually(Duration::from_secs(10), || async {
            self.objects().await.len() == n
        })
        .await
    }
}

struct Account {
    id: Uuid,
    token: String,
}

fn account(app: &TestApp, roles: &[&str]) -> Account {
    let id = Uuid::now_v7();
    Account {
        id,
        token: app.token(&id.to_string(), roles, &[]),
    }
}

fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&Account>,
) -> reqwest::RequestBuilder {
    let req = app
        .client
        .request(method, app.url(&format!("/api/v1/storage{path}")));
    match who {
        Some(w) => req.bearer_auth(&w.token),
        None => req,
    }
}

async fn json_ok(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

async fn bucket(app: &TestApp, who: &Account, settings: Value) -> String {
    let mut body = json!({"name": "files"});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let b = json_ok(
        api(app, Method::POST, "/buckets", Some(who))
            .json(&body)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    b["id"].as_str().unwrap().to_owned()
}

/// The listing of a bucket's files that `who` sees.
async fn files_in(app: &TestApp, who: &Account, bucket: &str) -> Value {
    json_ok(
        api(
            app,
            Method::GET,
            &format!("/buckets/{bucket}/files"),
            Some(who),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await
}

fn form(name: &str, bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()))
}

async fn upload(
    app: &TestApp,
    who: Option<&Account>,
    bucket: &str,
    form: Form,
) -> reqwest::Response {
    api(app, Method::POST, &format!("/buckets/{bucket}/files"), who)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn round_trip(backend: Backend) {
    let s = storage(backend, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let bytes: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .take(1_000_000)
        .collect();
    let form = form("../../notes/report.txt", bytes.clone())
        .text("tags", "work, q3,work")
        .text("metadata", r#"{"alt": "quarterly"}"#);
    let file = json_ok(upload(app, Some(&ada), &b, form).await, 201).await;
    assert_eq!(file["name"], "report.txt", "path segments are dropped");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha(&bytes));
    assert_eq!(file["content_type"], "text/plain");
    assert_eq!(file["tags"], json!(["q3", "work"]));
    assert_eq!(file["metadata"]["alt"], "quarterly");
    let id = file["id"].as_str().unwrap();
    assert_eq!(s.objects().await.len(), 1);

    let res = api(
        app,
        Method::GET,
        &format!("/files/{id}/download"),
        Some(&ada),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(
        res.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"report.txt\"")
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let cached = api(
        app,
        Method::GET,
        &format!("/files/{id}/download"),
        Some(&ada),
    )
    .header("if-none-match", &etag)
    .send()
    .await
    .unwrap();
    assert_eq!(cached.status(), 304);
    let part = api(
        app,
        Method::GET,
        &format!("/files/{id}/download"),
        Some(&ada),
    )
    .header("range", "bytes=10-19")
    .send()
    .await
    .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[10..20]);
    let tail = api(
        app,
        Method::GET,
        &format!("/files/{id}/download"),
        Some(&ada),
    )
    .header("range", "bytes=-5")
    .send()
    .await
    .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &bytes[bytes.len() - 5..]
    );
    let past = api(
        app,
        Method::GET,
        &format!("/files/{id}/download"),
        Some(&ada),
    )
    .header("range", format!("bytes={}-", bytes.len()))
    .send()
    .await
    .unwrap();
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );
    assert_eq!(problem(past).await["status"], 416);
    assert_eq!(app.events_of("storage.file.uploaded").await, 1);

    // Deleting removes the rows at once and the bytes right after.
    assert_eq!(
        api(app, Method::DELETE, &format!("/files/{id}"), Some(&ada))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        api(
            app,
            Method::GET,
            &format!("/files/{id}/download"),
            Some(&ada)
        )
        .send()
        .await
        .unwrap()
        .status(),
        404
    );
    assert!(
        s.objects_become(0).await,
        "bytes left: {:?}",
        s.objects().await
    );
    assert_eq!(app.events_of("storage.file.deleted").await, 1);
}

on_both_backends!(round_trip: files_round_trip_on_local_disk, files_round_trip_on_s3);

#[tokio::test]
async fn buckets_are_checked_and_private_to_their_owner() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);
    let bad = json!({"name": "x", "max_file_bytes": 0, "allowed_types": ["nonsense"], "allowed_extensions": ["p.n/g"],
                     "variants": [{"name": "a b", "width": 0, "height": 10}], "permissions": {"read": ["everyone"]}});
    let p = problem(
        api(app, Method::POST, "/buckets", Some(&ada))
            .json(&bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let fields = error_fields(&p);
    for f in [
        "max_file_bytes",
        "allowed_types[0]",
        "allowed_extensions[0]",
        "variants[0].name",
        "variants[0].width",
        "permissions.read[0]",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let b = bucket(app, &ada, json!({"versioning": true})).await;
    let got = json_ok(
        api(app, Method::GET, &format!("/buckets/{b}"), Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(got["versioning"], true);
    let changed = json_ok(
        api(app, Method::PATCH, &format!("/buckets/{b}"), Some(&ada))
            .json(&json!({"public": true}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (changed["public"].as_bool(), changed["versioning"].as_bool()),
        (Some(true), Some(true))
    );
    for method in [Method::GET, Method::DELETE] {
        assert_eq!(
            api(app, method, &format!("/buckets/{b}"), Some(&bob))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
    let listed = json_ok(
        api(app, Method::GET, "/buckets", Some(&bob))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    assert_eq!(
        api(app, Method::DELETE, &format!("/buckets/{b}"), Some(&ada))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        api(app, Method::GET, &format!("/buckets/{b}"), Some(&ada))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let images = bucket(
        app,
        &ada,
        json!({"allowed_types": ["image/*"], "max_file_bytes": 100_000}),
    )
    .await;
    let any = bucket(
        app,
        &ada,
        json!({"allowed_extensions": ["txt", "png", "bin"]}),
    )
    .await;
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(4096, 0);

    let cases: Vec<(&str, Form, u16, &str)> = vec![
        (
            &images,
            form(
                "big.png",
                png(400, 400)
                    .into_iter()
                    .chain(std::iter::repeat_n(0u8, 200_000))
                    .collect(),
            ),
            413,
            "file_too_large",
        ),
        (
            &images,
            form("cat.png", elf.clone()),
            415,
            "type_not_allowed",
        ),
        (&any, form("cat.png", elf.clone()), 415, "type_mismatch"),
        (
            &any,
            form("tool.exe", b"hello".to_vec()),
            415,
            "extension_not_allowed",
        ),
        (&any, form("empty.txt", Vec::new()), 400, "empty_file"),
        (
            &any,
            Form::new().text("name", "no file"),
            400,
            "invalid_multipart",
        ),
        (
            &any,
            form("a.txt", b"x".to_vec()).text("color", "red"),
            400,
            "invalid_multipart",
        ),
        (
            &any,
            form("a.txt", b"x".to_vec()).text("metadata", "[1,2]"),
            422,
            "validation_failed",
        ),
        (
            &any,
            form("a.txt", b"x".to_vec()).text("permissions", r#"{"read": ["root"]}"#),
            422,
            "validation_failed",
        ),
    ];
    for (b, f, status, code) in cases {
        let p = problem(upload(app, Some(&ada), b, f).await).await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(u64::from(status)), Some(code)),
            "{p}"
        );
    }
    // Not multipart at all, and multipart with a broken body.
    let res = api(
        app,
        Method::POST,
        &format!("/buckets/{any}/files"),
        Some(&ada),
    )
    .json(&json!({"file": "x"}))
    .send()
    .await
    .unwrap();
    assert_eq!(problem(res).await["status"], 400);
    let res = api(
        app,
        Method::POST,
        &format!("/buckets/{any}/files"),
        Some(&ada),
    )
    .header("content-type", "multipart/form-data; boundary=XYZ")
    .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello")
    .send()
    .await
    .unwrap();
    assert_eq!(problem(res).await["status"], 400);

    // A client that vanishes mid-upload leaves no object and no file.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/storage/buckets/{any}/files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n",
        ada.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![7u8; 300_000]).await.unwrap();
    drop(stream);

    // A declared length past the limit is refused before any of the body is sent.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/storage/buckets/{images}/files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000000\r\n\r\n",
        ada.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut stream, &mut answer),
    )
    .await
    .expect("answered without the body")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("file_too_large"), "{answer}");
    drop(stream);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.objects_become(0).await,
        "left behind: {:?}",
        s.objects().await
    );
    let listed = json_ok(
        api(
            app,
            Method::GET,
            &format!("/buckets/{any}/files"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    let usage = json_ok(
        api(app, Method::GET, "/usage", Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["bytes"], 0);
}

#[tokio::test]
async fn grants_public_buckets_and_signed_urls() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);
    let eve = account(app, &["user"]);
    let private = bucket(app, &ada, json!({})).await;
    let file = json_ok(
        upload(
            app,
            Some(&ada),
            &private,
            form("secret.txt", b"top secret".to_vec()),
        )
        .await,
        201,
    )
    .await;
    let id = file["id"].as_str().unwrap().to_owned();
    let download = format!("/files/{id}/download");

    assert_eq!(
        api(app, Method::GET, &download, None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    for who in [&bob, &eve] {
        for (method, path) in [
            (Method::GET, download.clone()),
            (Method::GET, format!("/files/{id}")),
            (Method::DELETE, format!("/files/{id}")),
        ] {
            assert_eq!(
                api(app, method, &path, Some(who))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                404,
                "{path}"
            );
        }
    }
    let listed = json_ok(
        api(
            app,
            Method::GET,
            &format!("/buckets/{private}/files"),
            Some(&eve),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["items"], json!([]));

    // A grant to Bob lets him read, not delete.
    let share = json!({"permissions": {"read": [format!("user:{}", bob.id), format!("user:{}", ada.id)], "update": [], "delete": []}});
    json_ok(
        api(app, Method::PATCH, &format!("/files/{id}"), Some(&ada))
            .json(&share)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        api(app, Method::GET, &download, Some(&bob))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "top secret"
    );
    assert_eq!(
        api(app, Method::DELETE, &format!("/files/{id}"), Some(&bob))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        api(app, Method::GET, &download, Some(&eve))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // A signed URL opens it to anyone until it expires; any change breaks it.
    let signed = json_ok(
        api(
            app,
            Method::POST,
            &format!("/files/{id}/signed-url"),
            Some(&ada),
        )
        .json(&json!({"expires_in": 60}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    let url = signed["url"].as_str().unwrap().to_owned();
    let path_and_query = &url[url.find("/api/v1/").unwrap()..];
    let anon = |p: String| app.client.get(app.url(&p)).send();
    assert_eq!(
        anon(path_and_query.to_owned())
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "top secret"
    );
    let tampered = path_and_query.replace("signature=", "signature=A");
    assert_eq!(
        problem(anon(tampered).await.unwrap()).await["code"],
        "invalid_signature"
    );
    let later = {
        let (base, rest) = path_and_query.split_once("expires=").unwrap();
        let (n, tail) = rest.split_once('&').unwrap();
        format!("{base}expires={}&{tail}", n.parse::<i64>().unwrap() + 3600)
    };
    assert_eq!(problem(anon(later).await.unwrap()).await["status"], 403);
    let other_file = path_and_query.replace(&id, &Uuid::now_v7().to_string());
    assert_eq!(
        problem(anon(other_file).await.unwrap()).await["status"],
        403
    );
    let short = json_ok(
        api(
            app,
            Method::POST,
            &format!("/files/{id}/signed-url"),
            Some(&ada),
        )
        .json(&json!({"expires_in": 1}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let short_url = short["url"].as_str().unwrap();
    let p = problem(
        anon(short_url[short_url.find("/api/v1/").unwrap()..].to_owned())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["code"], "url_expired");
    let p = problem(
        api(
            app,
            Method::POST,
            &format!("/files/{id}/signed-url"),
            Some(&ada),
        )
        .json(&json!({"expires_in": 0}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(p["status"], 422);
    assert_eq!(
        api(
            app,
            Method::POST,
            &format!("/files/{id}/signed-url"),
            Some(&eve)
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status(),
        404
    );

    // A public bucket's files need no token at all.
    let public = bucket(app, &ada, json!({"public": true})).await;
    let open = json_ok(
        upload(app, Some(&ada), &public, form("hello.txt", b"hi".to_vec())).await,
        201,
    )
    .await;
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v1/storage/files/{}/download",
            open["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    assert_eq!(res.text().await.unwrap(), "hi");
    // But uploading there still needs the owner (or a create grant).
    assert_eq!(
        upload(app, Some(&eve), &public, form("x.txt", b"x".to_vec()))
            .await
            .status(),
        403
    );
    let bad_id = api(app, Method::GET, "/files/not-a-uuid/download", Some(&ada))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad_id).await["status"], 404);
}

async fn versions(backend: Backend) {
    let s = storage(backend, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"versioning": true})).await;
    let file = json_ok(
        upload(app, Some(&ada), &b, form("doc.txt", b"first".to_vec())).await,
        201,
    )
    .await;
    let id = file["id"].as_str().unwrap().to_owned();
    let v2 = api(
        app,
        Method::POST,
        &format!("/files/{id}/versions"),
        Some(&ada),
    )
    .multipart(form("doc.txt", b"second".to_vec()))
    .send()
    .await
    .unwrap();
    let v2 = json_ok(v2, 201).await;
    assert_eq!(
        (v2["version"].as_i64(), v2["size"].as_i64()),
        (Some(2), Some(6))
    );
    let list = json_ok(
        api(
            app,
            Method::GET,
            &format!("/files/{id}/versions"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    let currents: Vec<bool> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["current"].as_bool().unwrap())
        .collect();
    assert_eq!(currents, [false, true]);
    let who = &ada;
    let text = |p: String| async move {
        api(app, Method::GET, &p, Some(who))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(text(format!("/files/{id}/download")).await, "second");
    assert_eq!(
        text(format!("/files/{id}/versions/1/download")).await,
        "first"
    );

    let p = problem(
        api(
            app,
            Method::DELETE,
            &format!("/files/{id}/versions/2"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(p["code"], "current_version");
    json_ok(
        api(
            app,
            Method::POST,
            &format!("/files/{id}/versions/1/restore"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(text(format!("/files/{id}/download")).await, "first");
    assert_eq!(
        api(
            app,
            Method::DELETE,
            &format!("/files/{id}/versions/2"),
            Some(&ada)
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    assert!(s.objects_become(1).await);
    assert_eq!(
        api(
            app,
            Method::GET,
            &format!("/files/{id}/versions/2/download"),
            Some(&ada)
        )
        .send()
        .await
        .unwrap()
        .status(),
        404
    );

    // Without versioning a new version replaces the old, bytes and all.
    let flat = bucket(app, &ada, json!({})).await;
    let f = json_ok(
        upload(app, Some(&ada), &flat, form("a.txt", b"old".to_vec())).await,
        201,
    )
    .await;
    let fid = f["id"].as_str().unwrap().to_owned();
    json_ok(
        api(
            app,
            Method::POST,
            &format!("/files/{fid}/versions"),
            Some(&ada),
        )
        .multipart(form("a.txt", b"new".to_vec()))
        .send()
        .await
        .unwrap(),
        201,
    )
    .await;
    let list = json_ok(
        api(
            app,
            Method::GET,
            &format!("/files/{fid}/versions"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(text(format!("/files/{fid}/download")).await, "new");
    assert!(s.objects_become(2).await, "{:?}", s.objects().await);
    let usage = json_ok(
        api(app, Method::GET, "/usage", Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["bytes"], 5 + 3, "only what is kept counts");
}

on_both_backends!(versions: versions_on_local_disk, versions_on_s3);

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    for (name, bytes, tags) in [
        ("b-photo.png", png(4, 4), "pets"),
        ("a-notes.txt", b"notes".to_vec(), "work"),
        ("c-photo.png", png(5, 5), "pets,cute"),
        ("report.csv", b"a,b\n".to_vec(), "work"),
    ] {
        json_ok(
            upload(app, Some(&ada), &b, form(name, bytes).text("tags", tags)).await,
            201,
        )
        .await;
    }
    let names = |q: &'static str| {
        let b = b.clone();
        let token = ada.token.clone();
        async move {
            let res = app
                .client
                .get(app.url(&format!("/api/v1/storage/buckets/{b}/files?{q}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let body = json_ok(res, 200).await;
            let names: Vec<String> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect();
            (names, body["next"].as_str().map(str::to_owned))
        }
    };
    assert_eq!(
        names("content_type=image/*&sort=name").await.0,
        ["b-photo.png", "c-photo.png"]
    );
    assert_eq!(names("content_type=text/csv").await.0, ["report.csv"]);
    assert_eq!(
        names("tag=work&sort=name&order=desc").await.0,
        ["report.csv", "a-notes.txt"]
    );
    assert_eq!(names("prefix=c-").await.0, ["c-photo.png"]);
    assert_eq!(
        names("prefix=%25").await.0,
        Vec::<String>::new(),
        "wildcards are literal"
    );
    let (first, next) = names("sort=name&limit=3").await;
    assert_eq!(first, ["a-notes.txt", "b-photo.png", "c-photo.png"]);
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v1/storage/buckets/{b}/files?sort=name&limit=3&after={}",
            next.unwrap()
        )))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    let rest = json_ok(res, 200).await;
    assert_eq!(rest["items"][0]["name"], "report.csv");
    assert!(rest.get("next").is_none());
    let res = app
        .client
        .get(app.url(&format!("/api/v1/storage/buckets/{b}/files?limit=500")))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await["status"], 400);
}

#[tokio::test]
async fn quotas_stop_uploads_and_free_up_on_delete() {
    let s = storage(
        Backend::Local,
        &[("BASALT__STORAGE__QUOTA_BYTES_PER_USER", "10000")],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let first = json_ok(
        upload(app, Some(&ada), &b, form("a.bin", vec![1u8; 6000])).await,
        201,
    )
    .await;
    let p = problem(upload(app, Some(&ada), &b, form("b.bin", vec![2u8; 6000])).await).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(507), Some("quota_exceeded"))
    );
    let usage = json_ok(
        api(app, Method::GET, "/usage", Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (usage["bytes"].as_i64(), usage["quota_bytes"].as_i64()),
        (Some(6000), Some(10000))
    );
    assert!(s.objects_become(1).await);
    // Concurrent uploads cannot overshoot the quota together.
    let racers = (0..4).map(|i| {
        upload(
            app,
            Some(&ada),
            &b,
            form(&format!("r{i}.bin"), vec![3u8; 3000]),
        )
    });
    let statuses = statuses_of(racers).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    api(
        app,
        Method::DELETE,
        &format!("/files/{}", first["id"].as_str().unwrap()),
        Some(&ada),
    )
    .send()
    .await
    .unwrap();
    let usage = json_ok(
        api(app, Method::GET, "/usage", Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["bytes"], 3000);
    json_ok(
        upload(app, Some(&ada), &b, form("c.bin", vec![4u8; 6000])).await,
        201,
    )
    .await;

    // Ada is at 9,000 of 10,000. Bob may upload into her shared bucket: that spends his quota,
    // not hers, and his own limit stops him.
    let bob = account(app, &["user"]);
    let shared = bucket(
        app,
        &ada,
        json!({"permissions": {"create": ["users"], "read": [], "update": [], "delete": []}}),
    )
    .await;
    json_ok(
        upload(app, Some(&bob), &shared, form("bob.bin", vec![5u8; 7000])).await,
        201,
    )
    .await;
    let p =
        problem(upload(app, Some(&bob), &shared, form("more.bin", vec![6u8; 4000])).await).await;
    assert_eq!(p["code"], "quota_exceeded");
    let used = |who: &Account| {
        let req = api(app, Method::GET, "/usage", Some(who)).send();
        async move { json_ok(req.await.unwrap(), 200).await["bytes"].as_i64() }
    };
    assert_eq!(
        (used(&ada).await, used(&bob).await),
        (Some(9000), Some(7000))
    );
}

async fn variants(backend: Backend) {
    // The job's poll is a minute away: an upload has to wake it.
    let s = storage(backend, &[("BASALT__STORAGE__VARIANTS_POLL_MS", "60000")]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let variants = json!([
        {"name": "thumb", "width": 64, "height": 64, "fit": "cover", "format": "webp"},
        {"name": "small", "width": 200, "height": 200}
    ]);
    let b = bucket(
        app,
        &ada,
        json!({"variants": variants, "allowed_types": ["image/*"]}),
    )
    .await;
    let file = json_ok(
        upload(app, Some(&ada), &b, form("photo.png", png(640, 480))).await,
        201,
    )
    .await;
    assert_eq!(
        (file["width"].as_i64(), file["height"].as_i64()),
        (Some(640), Some(480))
    );
    let id = file["id"].as_str().unwrap().to_owned();
    let made = eventually(Duration::from_secs(15), || async {
        let f = json_ok(
            api(app, Method::GET, &format!("/files/{id}"), Some(&ada))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        f["variants"].as_array().is_some_and(|v| v.len() == 2)
    })
    .await;
    assert!(made, "variants were not made");
    let f = json_ok(
        api(app, Method::GET, &format!("/files/{id}"), Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let dims: Vec<(i64, i64, &str)> = f["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["width"].as_i64().unwrap(),
                v["height"].as_i64().unwrap(),
                v["content_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(dims, [(200, 150, "image/jpeg"), (64, 64, "image/webp")]);
    let thumb = api(
        app,
        Method::GET,
        &format!("/files/{id}/variants/thumb"),
        Some(&ada),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(thumb.headers()["content-type"], "image/webp");
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    assert_eq!(app.events_of("storage.variant.created").await, 2);
    // The work item is removed just after the variants are recorded.
    assert!(
        eventually(Duration::from_secs(5), || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM storage.variant_jobs")
                .fetch_one(&app.db)
                .await
                .unwrap()
                == 0
        })
        .await,
        "the job finished its work item"
    );
    assert_eq!(
        api(
            app,
            Method::GET,
            &format!("/files/{id}/variants/huge"),
            Some(&ada)
        )
        .send()
        .await
        .unwrap()
        .status(),
        404
    );

    // A preview is made on first use and kept.
    for _ in 0..2 {
        let res = api(
            app,
            Method::GET,
            &format!("/files/{id}/preview?width=100&format=png"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.headers()["content-type"], "image/png");
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (128, 96),
            "100 snaps up to 128"
        );
    }
    let previews: i64 = sqlx::query_scalar("SELECT count(*) FROM storage.previews")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(previews, 1);
    let p = problem(
        api(
            app,
            Method::GET,
            &format!("/files/{id}/preview?width=99999"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(p["status"], 400);
    // A signed URL opens exactly one preview of a private image to anyone.
    let signed = api(
        app,
        Method::POST,
        &format!("/files/{id}/signed-url"),
        Some(&ada),
    )
    .json(&json!({"preview": {"width": 100, "format": "png"}}))
    .send()
    .await
    .unwrap();
    let signed = json_ok(signed, 200).await;
    let url = signed["url"].as_str().unwrap();
    let path = &url[url.find("/api/v1/").unwrap()..];
    let res = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (128, 96),
        "100 snaps up to 128"
    );
    let bigger = path.replace("width=128", "width=1000");
    assert_ne!(bigger, path);
    assert_eq!(
        problem(app.client.get(app.url(&bigger)).send().await.unwrap()).await["code"],
        "invalid_signature"
    );
    assert_eq!(
        app.client
            .get(app.url(&format!("/api/v1/storage/files/{id}/preview?width=100")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Original, two variants and a preview; deleting the file removes them all.
    assert_eq!(s.objects().await.len(), 4);
    api(app, Method::DELETE, &format!("/files/{id}"), Some(&ada))
        .send()
        .await
        .unwrap();
    assert!(s.objects_become(0).await, "{:?}", s.objects().await);
}

on_both_backends!(variants: image_variants_on_local_disk, image_variants_on_s3);

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn decompression_bombs_are_refused_at_upload() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(
        app,
        &ada,
        json!({"variants": [{"name": "t", "width": 10, "height": 10}]}),
    )
    .await;
    // A PNG whose header (checksum and all) claims 60000 x 60000 pixels.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&60000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let p = problem(upload(app, Some(&ada), &b, form("bomb.png", bomb)).await).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(422), Some("image_too_large"))
    );
    assert!(s.objects_become(0).await);
}

async fn resumable(backend: Backend) {
    let s = storage(backend, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let tus = |method: Method, path: &str| {
        api(app, method, path, Some(&ada)).header("tus-resumable", "1.0.0")
    };

    let opts = tus(Method::OPTIONS, &format!("/buckets/{b}/uploads"))
        .send()
        .await
        .unwrap();
    assert!(
        opts.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("creation")
    );
    let no_version = api(
        app,
        Method::POST,
        &format!("/buckets/{b}/uploads"),
        Some(&ada),
    )
    .header("upload-length", "10")
    .send()
    .await
    .unwrap();
    assert_eq!(problem(no_version).await["status"], 412);
    let created = tus(Method::POST, &format!("/buckets/{b}/uploads"))
        .header("upload-length", data.len().to_string())
        .header("upload-metadata", "filename YmlnLmJpbg==,tags dXBsb2Fk")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let upload_path = location[location.find("/uploads/").unwrap()..].to_owned();
    let patch = |offset: usize, body: Vec<u8>| {
        tus(Method::PATCH, &upload_path)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let offset_of = |res: &reqwest::Response| {
        res.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };

    let res = patch(0, data[..1_000_000].to_vec()).await.unwrap();
    assert_eq!((res.status().as_u16(), offset_of(&res)), (204, 1_000_000));
    let p = problem(patch(0, data[..10].to_vec()).await.unwrap()).await;
    assert_eq!(p["code"], "offset_mismatch");

    // The connection breaks part-way through the next chunk.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH /api/v1/storage{upload_path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 1000000\r\nContent-Length: 1000000\r\n\r\n",
        ada.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&data[1_000_000..1_400_000]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);

    // The client asks where to resume: what arrived before the break is kept, once the server
    // has noticed the break and recorded it.
    assert!(
        eventually(Duration::from_secs(10), || async {
            offset_of(&tus(Method::HEAD, &upload_path).send().await.unwrap()) > 1_000_000
        })
        .await
    );
    let res = tus(Method::HEAD, &upload_path).send().await.unwrap();
    let resume_at = offset_of(&res);
    assert!(resume_at <= 1_400_000, "{resume_at}");
    assert_eq!(
        res.headers()["upload-length"],
        data.len().to_string().as_str()
    );
    let res = patch(resume_at, data[resume_at..].to_vec()).await.unwrap();
    assert_eq!((res.status().as_u16(), offset_of(&res)), (204, data.len()));

    let listed = files_in(app, &ada, &b).await;
    let file = &listed["items"][0];
    assert_eq!(
        (file["name"].as_str(), file["sha256"].as_str()),
        (Some("big.bin"), Some(sha(&data).as_str()))
    );
    assert_eq!(file["tags"], json!(["upload"]));
    let got = api(
        app,
        Method::GET,
        &format!("/files/{}/download", file["id"].as_str().unwrap()),
        Some(&ada),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(
        tus(Method::HEAD, &upload_path)
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "a finished upload is gone"
    );
    assert!(
        s.objects_become(1).await,
        "parts left: {:?}",
        s.objects().await
    );

    // Termination removes what arrived.
    let created = tus(Method::POST, &format!("/buckets/{b}/uploads"))
        .header("upload-length", "100")
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let other = location[location.find("/uploads/").unwrap()..].to_owned();
    let res = tus(Method::PATCH, &other)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(vec![1u8; 50])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let too_long = tus(Method::PATCH, &other)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "50")
        .body(vec![1u8; 80])
        .send()
        .await
        .unwrap();
    assert_eq!(problem(too_long).await["status"], 413);
    assert_eq!(
        tus(Method::DELETE, &other).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        tus(Method::HEAD, &other).send().await.unwrap().status(),
        404
    );
    assert!(s.objects_become(1).await, "{:?}", s.objects().await);
}

on_both_backends!(resumable: resumable_uploads_on_local_disk, resumable_uploads_on_s3);

#[tokio::test]
async fn bytes_no_row_ever_owned_are_swept() {
    let s = storage(
        Backend::Local,
        &[("BASALT__STORAGE__ORPHAN_AFTER_SECS", "1")],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    json_ok(
        upload(app, Some(&ada), &b, form("kept.txt", b"kept".to_vec())).await,
        201,
    )
    .await;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM storage.pending_objects")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(pending, 0, "a committed upload owns its bytes");
    // A writer that died after writing its bytes and before committing its row.
    std::fs::create_dir_all(s.dir.join("files/crashed")).unwrap();
    std::fs::write(s.dir.join("files/crashed/object"), b"orphan").unwrap();
    sqlx::query("INSERT INTO storage.pending_objects (object_key, created_at) VALUES ('files/crashed/object', now() - interval '1 minute')")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(s.objects().await.len(), 2);
    assert!(s.objects_become(1).await, "{:?}", s.objects().await);
    let listed = files_in(app, &ada, &b).await;
    assert_eq!(listed["items"][0]["name"], "kept.txt", "owned bytes stay");
}

#[tokio::test]
async fn openapi_documents_the_storage_api() {
    let s = storage(Backend::Local, &[]).await;
    let doc: Value = s
        .app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/storage/buckets", "post"),
        ("/api/v1/storage/buckets/{bucket}/files", "post"),
        ("/api/v1/storage/files/{file}/download", "get"),
        ("/api/v1/storage/files/{file}/signed-url", "post"),
        (
            "/api/v1/storage/files/{file}/versions/{number}/restore",
            "post",
        ),
        ("/api/v1/storage/uploads/{upload}", "patch"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let upload = &doc["paths"]["/api/v1/storage/buckets/{bucket}/files"]["post"];
    assert!(upload["requestBody"]["content"]["multipart/form-data"].is_object());
    assert!(upload["responses"]["415"].is_object());
    let health: Value = s.app.get("/health").await.json().await.unwrap();
    assert_eq!(
        crate::helpers::health_check(&health, "storage-backend")["status"],
        "ok"
    );
}

#[tokio::test]
async fn every_file_endpoint_checks_grants_and_input() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);
    let eve = account(app, &["user"]);
    let b = bucket(
        app,
        &ada,
        json!({"versioning": true, "variants": [{"name": "t", "width": 8, "height": 8}]}),
    )
    .await;
    let read_for_bob = format!(r#"{{"read": ["user:{}", "user:{}"]}}"#, bob.id, ada.id);
    let file = json_ok(
        upload(
            app,
            Some(&ada),
            &b,
            form("dot.png", png(16, 16)).text("permissions", read_for_bob),
        )
        .await,
        201,
    )
    .await;
    let id = file["id"].as_str().unwrap().to_owned();
    let created = api(
        app,
        Method::POST,
        &format!("/buckets/{b}/uploads"),
        Some(&ada),
    )
    .header("tus-resumable", "1.0.0")
    .header("upload-length", "10")
    .send()
    .await
    .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let upload_path = location[location.find("/uploads/").unwrap()..].to_owned();

    let variant_made = eventually(Duration::from_secs(15), || async {
        let f = json_ok(
            api(app, Method::GET, &format!("/files/{id}"), Some(&ada))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        f["variants"].as_array().is_some_and(|v| v.len() == 1)
    })
    .await;
    assert!(variant_made);

    // Eve may not know the file or the upload exist; Bob may read the file but not change it.
    let reads: Vec<(Method, String)> = vec![
        (Method::GET, format!("/files/{id}/versions")),
        (Method::GET, format!("/files/{id}/versions/1/download")),
        (Method::GET, format!("/files/{id}/variants/t")),
        (Method::GET, format!("/files/{id}/preview?width=4")),
    ];
    let changes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            format!("/files/{id}"),
            Some(json!({"name": "mine.png"})),
        ),
        (
            Method::POST,
            format!("/files/{id}/versions/1/restore"),
            None,
        ),
        (Method::DELETE, format!("/files/{id}/versions/1"), None),
    ];
    for (method, path) in &reads {
        let res = api(app, method.clone(), path, Some(&eve))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path} as a stranger");
        let res = api(app, method.clone(), path, Some(&bob))
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 404, "{method} {path} with a read grant");
        assert_ne!(res.status(), 403, "{method} {path} with a read grant");
    }
    for (method, path, body) in &changes {
        let req = |who| {
            let r = api(app, method.clone(), path, Some(who));
            match body {
                Some(b) => r.json(b),
                None => r,
            }
        };
        assert_eq!(
            problem(req(&eve).send().await.unwrap()).await["status"],
            404,
            "{method} {path} as a stranger"
        );
        assert_eq!(
            problem(req(&bob).send().await.unwrap()).await["status"],
            403,
            "{method} {path} with a read grant"
        );
    }
    let new_version = api(
        app,
        Method::POST,
        &format!("/files/{id}/versions"),
        Some(&bob),
    )
    .multipart(form("x.png", png(4, 4)))
    .send()
    .await
    .unwrap();
    assert_eq!(problem(new_version).await["status"], 403);
    let p = problem(
        api(app, Method::PATCH, &format!("/buckets/{b}"), Some(&eve))
            .json(&json!({"public": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["status"], 404);
    for method in [Method::HEAD, Method::PATCH, Method::DELETE] {
        let res = api(app, method.clone(), &upload_path, Some(&eve))
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body(vec![1u8; 4])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} someone else's upload");
    }
    let res = api(
        app,
        Method::POST,
        &format!("/buckets/{b}/uploads"),
        Some(&eve),
    )
    .header("tus-resumable", "1.0.0")
    .header("upload-length", "10")
    .send()
    .await
    .unwrap();
    assert_eq!(problem(res).await["status"], 403);
    for path in ["/usage", "/buckets"] {
        assert_eq!(
            problem(api(app, Method::GET, path, None).send().await.unwrap()).await["status"],
            401,
            "{path}"
        );
    }

    // Bad input on the same endpoints, nothing changed by it.
    let bad: Vec<(Method, String, Value, u64)> = vec![
        (
            Method::PATCH,
            format!("/buckets/{b}"),
            json!({"max_file_bytes": 0}),
            422,
        ),
        (
            Method::PATCH,
            format!("/buckets/{b}"),
            json!({"variants": [{"name": "t", "width": 99999, "height": 1}]}),
            422,
        ),
        (
            Method::PATCH,
            format!("/files/{id}"),
            json!({"tags": vec!["t"; 40]}),
            422,
        ),
        (
            Method::PATCH,
            format!("/files/{id}"),
            json!({"permissions": {"read": ["everyone"]}}),
            422,
        ),
        (
            Method::PATCH,
            format!("/files/{id}"),
            json!({"name": ""}),
            422,
        ),
        (
            Method::POST,
            format!("/files/{id}/signed-url"),
            json!({"version": 9}),
            404,
        ),
        (
            Method::POST,
            format!("/files/{id}/signed-url"),
            json!({"preview": {"width": 0}}),
            400,
        ),
    ];
    for (method, path, body, status) in bad {
        let p = problem(
            api(app, method.clone(), &path, Some(&ada))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(p["status"], status, "{method} {path} {body}: {p}");
    }
    for path in [
        format!("/files/{id}/versions/x/download"),
        format!("/files/{id}/versions/9/download"),
    ] {
        assert_eq!(
            problem(
                api(app, Method::GET, &path, Some(&ada))
                    .send()
                    .await
                    .unwrap()
            )
            .await["status"],
            404,
            "{path}"
        );
    }
    assert_eq!(
        problem(
            api(
                app,
                Method::POST,
                &format!("/files/{id}/versions/9/restore"),
                Some(&ada)
            )
            .send()
            .await
            .unwrap()
        )
        .await["status"],
        404
    );
    let tus = |method: Method, path: &str| {
        api(app, method, path, Some(&ada)).header("tus-resumable", "1.0.0")
    };
    let p = problem(
        tus(Method::POST, &format!("/buckets/{b}/uploads"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["code"], "invalid_length");
    let p = problem(
        tus(Method::POST, &format!("/buckets/{b}/uploads"))
            .header("upload-length", "5")
            .header("upload-metadata", "filename !!!")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["code"], "invalid_metadata");
    let p = problem(
        tus(Method::PATCH, &upload_path)
            .header("upload-offset", "0")
            .body(vec![1u8; 4])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["status"], 415);
    let p = problem(
        tus(Method::PATCH, &upload_path)
            .header("content-type", "application/offset+octet-stream")
            .body(vec![1u8; 4])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["code"], "invalid_offset");
    let f = json_ok(
        api(app, Method::GET, &format!("/files/{id}"), Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (f["name"].as_str(), f["version"].as_i64(), f["tags"].clone()),
        (Some("dot.png"), Some(1), json!([]))
    );
    let bk = json_ok(
        api(app, Method::GET, &format!("/buckets/{b}"), Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(bk["public"], false);
}

#[tokio::test]
async fn nul_characters_are_refused_and_nothing_is_stored() {
    // Valid JSON and UTF-8, but PostgreSQL stores no U+0000 in text or jsonb.
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let res = api(app, Method::POST, "/buckets", Some(&ada))
        .json(&json!({"name": "a\u{0}b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await["code"], "invalid_text");
    let b = bucket(app, &ada, json!({})).await;
    let form = form("a.txt", b"hello".to_vec()).text("metadata", r#"{"note": "a\u0000b"}"#);
    let p = problem(upload(app, Some(&ada), &b, form).await).await;
    assert_eq!(p["code"], "invalid_text");
    let listed = files_in(app, &ada, &b).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "{listed}");
    assert!(
        s.objects_become(0).await,
        "the bytes went too: {:?}",
        s.objects().await
    );
}

/// Every page of a list, following `next` until it is absent; no page may be empty.
async fn pages(app: &TestApp, who: &Account, path: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            Some(cursor) => format!("{path}{sep}after={cursor}"),
            None => path.to_owned(),
        };
        let body = json_ok(
            api(app, Method::GET, &url, Some(who)).send().await.unwrap(),
            200,
        )
        .await;
        let items = body["items"].as_array().unwrap().clone();
        assert!(!items.is_empty(), "an empty page at {url}: {body}");
        out.push(items);
        match body.get("next") {
            Some(next) => after = Some(next.as_str().unwrap().to_owned()),
            None => return out,
        }
    }
}

/// The sizes of the pages, and the `field` of every item in order.
fn walked(pages: &[Vec<Value>], field: &str) -> (Vec<usize>, Vec<Value>) {
    (
        pages.iter().map(Vec::len).collect(),
        pages.iter().flatten().map(|i| i[field].clone()).collect(),
    )
}

#[tokio::test]
async fn lists_are_pages_that_visit_every_item_once() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);

    // Buckets, oldest first.
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(json!(
            bucket(
                app,
                &ada,
                json!({"name": format!("b{i}"), "versioning": true})
            )
            .await
        ));
    }
    bucket(app, &bob, json!({})).await;
    assert_eq!(
        walked(&pages(app, &ada, "/buckets?limit=2").await, "id"),
        (vec![2, 2, 1], mine.clone())
    );
    assert_eq!(
        walked(&pages(app, &ada, "/buckets?limit=5").await, "id"),
        (vec![5], mine.clone()),
        "a full last page has no next"
    );
    assert_eq!(walked(&pages(app, &bob, "/buckets").await, "id").0, [1]);

    // Files, in either sort and order.
    let b = mine[0].as_str().unwrap().to_owned();
    let names = ["e.txt", "a.txt", "d.txt", "b.txt", "c.txt"];
    let mut ids = Vec::new();
    for name in names {
        let f = json_ok(
            upload(app, Some(&ada), &b, form(name, name.as_bytes().to_vec())).await,
            201,
        )
        .await;
        ids.push(f["id"].clone());
    }
    let files = format!("/buckets/{b}/files");
    assert_eq!(
        walked(
            &pages(app, &ada, &format!("{files}?sort=name&limit=2")).await,
            "name"
        ),
        (
            vec![2, 2, 1],
            vec![
                json!("a.txt"),
                json!("b.txt"),
                json!("c.txt"),
                json!("d.txt"),
                json!("e.txt")
            ]
        )
    );
    let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
    assert_eq!(
        walked(
            &pages(app, &ada, &format!("{files}?order=desc&limit=3")).await,
            "id"
        ),
        (vec![3, 2], newest_first)
    );
    assert_eq!(
        walked(&pages(app, &ada, &format!("{files}?limit=5")).await, "id"),
        (vec![5], ids.clone())
    );

    // A file's versions.
    let file = ids[0].as_str().unwrap();
    for body in ["two", "three"] {
        json_ok(
            api(
                app,
                Method::POST,
                &format!("/files/{file}/versions"),
                Some(&ada),
            )
            .multipart(form("e.txt", body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap(),
            201,
        )
        .await;
    }
    let versions = format!("/files/{file}/versions");
    assert_eq!(
        walked(
            &pages(app, &ada, &format!("{versions}?limit=2")).await,
            "number"
        ),
        (vec![2, 1], vec![json!(1), json!(2), json!(3)])
    );
    assert_eq!(
        walked(
            &pages(app, &ada, &format!("{versions}?limit=3")).await,
            "number"
        )
        .0,
        [3]
    );

    // Cursors are opaque: a made-up one, one made under another sort, and a file's id (what
    // `after` used to be, which looked the file up in any bucket) are all refused.
    let by_name = json_ok(
        api(
            app,
            Method::GET,
            &format!("{files}?sort=name&limit=1"),
            Some(&ada),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = bucket(app, &bob, json!({})).await;
    let bobs = json_ok(
        upload(app, Some(&bob), &other, form("z.txt", b"z".to_vec())).await,
        201,
    )
    .await;
    for path in [
        "/buckets?after=bm90IGEgY3Vyc29y".to_owned(),
        format!("{files}?after=*"),
        format!("{files}?sort=created_at&after={by_name}"),
        format!("{files}?after={}", bobs["id"].as_str().unwrap()),
        format!("{versions}?after=e30"),
    ] {
        let p = problem(
            api(app, Method::GET, &path, Some(&ada))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(400), Some("invalid_cursor")),
            "{path}"
        );
    }
    // A cursor is a position in the sort, whatever bucket it came from.
    let second = bucket(app, &ada, json!({})).await;
    for name in ["0.txt", "z.txt"] {
        json_ok(
            upload(app, Some(&ada), &second, form(name, b"x".to_vec())).await,
            201,
        )
        .await;
    }
    assert_eq!(
        walked(
            &pages(
                app,
                &ada,
                &format!("/buckets/{second}/files?sort=name&after={by_name}")
            )
            .await,
            "name"
        )
        .1,
        [json!("z.txt")]
    );
}

#[tokio::test]
async fn events_carry_the_actor_and_the_request_id() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let created = json_ok(
        api(app, Method::POST, "/buckets", Some(&ada))
            .header("x-request-id", "storage-events-1")
            .json(&json!({"name": "drop box", "permissions": {"create": ["any"]}}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let b = created["id"].as_str().unwrap();
    let mut files = Vec::new();
    for (who, request) in [(Some(&ada), "storage-events-2"), (None, "storage-events-3")] {
        let file = json_ok(
            api(app, Method::POST, &format!("/buckets/{b}/files"), who)
                .header("x-request-id", request)
                .multipart(form("a.txt", b"hello".to_vec()))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        files.push(file["id"].clone());
    }
    // (type, source, actor, aggregate, payload) of the event a request caused.
    let event = |request: &'static str| async move {
        sqlx::query_as::<_, (String, String, String, String, Value)>(
            "SELECT event_type, source, actor, aggregate_id, payload FROM platform.outbox
              WHERE request_id = $1",
        )
        .bind(request)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let actor = format!("user:{}", ada.id);
    assert_eq!(
        event("storage-events-1").await,
        (
            "storage.bucket.created".to_owned(),
            "storage".to_owned(),
            actor.clone(),
            b.to_owned(),
            json!({"user_id": ada.id, "bucket_id": b, "name": "drop box"})
        )
    );
    for (request, actor, uploader, file) in [
        ("storage-events-2", actor.as_str(), json!(ada.id), &files[0]),
        ("storage-events-3", "system", Value::Null, &files[1]),
    ] {
        let (event_type, _, by, aggregate, payload) = event(request).await;
        assert_eq!(
            (event_type.as_str(), by.as_str(), aggregate.as_str()),
            ("storage.file.uploaded", actor, file.as_str().unwrap())
        );
        assert!(Uuid::parse_str(payload["version_id"].as_str().unwrap()).is_ok());
        assert_eq!(
            payload,
            json!({
                "user_id": ada.id, "uploader_id": uploader, "bucket_id": b, "file_id": file,
                "version_id": payload["version_id"], "version": 1, "name": "a.txt", "size": 5,
                "content_type": "text/plain", "sha256": sha(b"hello"),
            }),
            "the payload webhooks and Kafka consumers see is unchanged"
        );
    }
}

#[tokio::test]
async fn domain_errors_render_the_same_problems() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(
        app,
        &ada,
        json!({"versioning": true, "allowed_extensions": ["txt"]}),
    )
    .await;
    let file = json_ok(
        upload(app, Some(&ada), &b, form("a.txt", b"hello".to_vec())).await,
        201,
    )
    .await;
    let id = file["id"].as_str().unwrap().to_owned();
    let nobody = Uuid::now_v7();
    // (request, status, title, code, detail, a header the problem must carry)
    type Case<'a> = (
        reqwest::RequestBuilder,
        u16,
        &'a str,
        &'a str,
        &'a str,
        Option<(&'a str, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            api(app, Method::GET, &format!("/files/{nobody}"), Some(&ada)),
            404,
            "Not Found",
            "not_found",
            "No such file.",
            None,
        ),
        (
            api(app, Method::GET, &format!("/buckets/{nobody}"), Some(&ada)),
            404,
            "Not Found",
            "not_found",
            "No such bucket.",
            None,
        ),
        (
            api(
                app,
                Method::DELETE,
                &format!("/files/{id}/versions/1"),
                Some(&ada),
            ),
            409,
            "Conflict",
            "current_version",
            "This is the current version: restore another one first.",
            None,
        ),
        (
            api(
                app,
                Method::POST,
                &format!("/buckets/{b}/files"),
                Some(&ada),
            )
            .multipart(form("a.png", png(2, 2))),
            415,
            "Unsupported Media Type",
            "extension_not_allowed",
            "This bucket accepts only txt.",
            None,
        ),
        (
            api(
                app,
                Method::GET,
                &format!("/files/{id}/download?expires=1&signature=AAAA"),
                None,
            ),
            403,
            "Forbidden",
            "invalid_signature",
            "The URL's signature is not valid.",
            None,
        ),
        (
            api(
                app,
                Method::GET,
                &format!("/files/{id}/download"),
                Some(&ada),
            )
            .header("range", "bytes=5-"),
            416,
            "Range Not Satisfiable",
            "range_not_satisfiable",
            "The file is 5 bytes long.",
            Some(("content-range", "bytes */5")),
        ),
        (
            api(
                app,
                Method::POST,
                &format!("/buckets/{b}/uploads"),
                Some(&ada),
            )
            .header("upload-length", "5"),
            412,
            "Precondition Failed",
            "tus_version",
            "Send Tus-Resumable: 1.0.0.",
            Some(("tus-version", "1.0.0")),
        ),
    ];
    for (req, status, title, code, detail, header) in cases {
        let res = req
            .header("x-request-id", "storage-problem")
            .send()
            .await
            .unwrap();
        if let Some((name, value)) = header {
            assert_eq!(res.headers()[name], value, "{code}");
        }
        assert_eq!(
            problem(res).await,
            json!({
                "type": format!("urn:basalt:problem:{code}"), "title": title, "status": status,
                "detail": detail, "code": code, "request_id": "storage-problem",
            })
        );
    }
}

mod hardening;
