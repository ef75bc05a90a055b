//! Issue #11, the storage items: an update grant on files (1), previews that cannot exhaust
//! memory or quota (3), quota reserved by resumable uploads (9), ranges past u64 (15), a new
//! version finishing after its file went (16) and anonymous resumable uploads (18).

use reqwest::Method;
use serde_json::json;

use super::{Backend, account, api, bucket, crc32, form, json_ok, png, storage, upload};
use crate::helpers::{TestApp, problem};

async fn usage(app: &TestApp, who: &super::Account) -> i64 {
    json_ok(
        api(app, Method::GET, "/usage", Some(who))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await["bytes"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_update_grant_on_a_file_neither_reads_nor_regrants() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"permissions": {"update": ["users"]}})).await;
    let file = json_ok(
        upload(
            app,
            Some(&ada),
            &b,
            form("secret.txt", b"ada's secret".to_vec()),
        )
        .await,
        201,
    )
    .await;
    let path = format!("/files/{}", file["id"].as_str().unwrap());
    assert_eq!(
        api(app, Method::GET, &path, Some(&bob))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Bob may rename it, and learns nothing of it from the answer.
    let res = api(app, Method::PATCH, &path, Some(&bob))
        .json(&json!({"name": "renamed.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.text().await.unwrap().is_empty());
    // He may not make it public, nor give himself more.
    for grants in [json!({"read": ["any"]}), json!({"delete": ["users"]})] {
        let p = problem(
            api(app, Method::PATCH, &path, Some(&bob))
                .json(&json!({"permissions": grants}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(403), Some("forbidden")),
            "{p}"
        );
    }
    let download = format!("{path}/download");
    assert_eq!(
        api(app, Method::GET, &download, None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let mine = json_ok(
        api(app, Method::GET, &path, Some(&ada))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(mine["name"], "renamed.txt");
    assert_eq!(
        mine["permissions"]["read"],
        json!([format!("user:{}", ada.id)])
    );
    // The bucket's owner may.
    let public = json_ok(
        api(app, Method::PATCH, &path, Some(&ada))
            .json(&json!({"permissions": {"read": ["any"]}}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(public["permissions"]["read"], json!(["any"]));
    assert_eq!(
        api(app, Method::GET, &download, None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Anonymous callers may now read it, not change it.
    assert_eq!(
        api(app, Method::PATCH, &path, None)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn ranges_past_u64_are_clamped_or_unsatisfiable() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let bytes: Vec<u8> = (0..100u8).collect();
    let file = json_ok(
        upload(app, Some(&ada), &b, form("r.bin", bytes.clone())).await,
        201,
    )
    .await;
    let download = format!("/files/{}/download", file["id"].as_str().unwrap());
    for range in [
        "bytes=0-18446744073709551615",
        "bytes=0-99999999999999999999999",
    ] {
        let res = api(app, Method::GET, &download, Some(&ada))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(res.headers()["content-range"], "bytes 0-99/100", "{range}");
        assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    for range in [
        "bytes=18446744073709551615-",
        "bytes=99999999999999999999999-5",
    ] {
        let res = api(app, Method::GET, &download, Some(&ada))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-range"], "bytes */100", "{range}");
        let p = problem(res).await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(416), Some("range_not_satisfiable")),
            "{range}"
        );
    }
}

/// A PNG of 1 x 1 pixel whose header (checksum and all) claims `side` x `side`.
fn claims(side: u32) -> Vec<u8> {
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&side.to_be_bytes());
    bomb[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}

#[tokio::test]
async fn previews_are_bounded_snapped_and_charged_to_the_bucket_owner() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let bob = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"public": true})).await;
    // 10000 x 10000 is within what an upload accepts (100 Mpx), past what a preview decodes.
    let huge = json_ok(
        upload(app, Some(&ada), &b, form("huge.png", claims(10000))).await,
        201,
    )
    .await;
    assert_eq!(huge["width"], 10000);
    for who in [None, Some(&ada)] {
        let p = problem(
            api(
                app,
                Method::GET,
                &format!(
                    "/files/{}/preview?width=4000&height=4000&format=png",
                    huge["id"].as_str().unwrap()
                ),
                who,
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(422), Some("image_too_large")),
            "{p}"
        );
    }

    // Sizes snap up to the next preview size: 100 and 120 wide are one preview, 128 wide,
    // stored once and paid for by the bucket's owner, whoever asks.
    let photo = json_ok(
        upload(app, Some(&ada), &b, form("p.png", png(400, 300))).await,
        201,
    )
    .await;
    let preview = |w: u32, who: Option<&super::Account>| {
        api(
            app,
            Method::GET,
            &format!(
                "/files/{}/preview?width={w}&format=png",
                photo["id"].as_str().unwrap()
            ),
            who,
        )
        .send()
    };
    let before = (usage(app, &ada).await, usage(app, &bob).await);
    let mut etags = Vec::new();
    let mut size = 0;
    for (w, who) in [(100, Some(&bob)), (120, None), (128, Some(&ada))] {
        let res = preview(w, who).await.unwrap();
        assert_eq!(res.status(), 200, "{w}");
        etags.push(res.headers()["etag"].to_str().unwrap().to_owned());
        let bytes = res.bytes().await.unwrap();
        size = bytes.len() as i64;
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (128, 96), "{w}");
    }
    assert!(etags.iter().all(|e| *e == etags[0]), "{etags:?}");
    let previews: i64 = sqlx::query_scalar("SELECT count(*) FROM storage.previews")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(previews, 1);
    assert_eq!(
        (usage(app, &ada).await, usage(app, &bob).await),
        (before.0 + size, before.1)
    );
    // Deleting the image gives the preview's bytes back too.
    let total_before_delete = usage(app, &ada).await;
    assert_eq!(
        api(
            app,
            Method::DELETE,
            &format!("/files/{}", photo["id"].as_str().unwrap()),
            Some(&ada)
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    assert_eq!(
        usage(app, &ada).await,
        total_before_delete - size - photo["size"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn previews_wait_for_the_decode_memory_budget_and_past_it_are_refused() {
    // 2 MiB: a 400 x 300 image (480 kB decoded, plus the resize's buffers) renders at every
    // snapped size up to 384 within it, a few at a time; a 1000 x 1000 one (4 MB decoded)
    // never fits.
    let s = storage(
        Backend::Local,
        &[("BASALT__STORAGE__DECODE_MEMORY_BUDGET_BYTES", "2097152")],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"public": true})).await;
    let photo = json_ok(
        upload(app, Some(&ada), &b, form("p.png", png(400, 300))).await,
        201,
    )
    .await;
    let id = photo["id"].as_str().unwrap();
    // Sixteen distinct previews at once, anonymously: they queue for the budget, none fails.
    let asks = [16u32, 32, 48, 64, 96, 128, 256, 384]
        .into_iter()
        .flat_map(|w| ["contain", "cover"].map(move |fit| (w, fit)))
        .map(|(w, fit)| async move {
            let res = api(
                app,
                Method::GET,
                &format!("/files/{id}/preview?width={w}&height={w}&fit={fit}&format=png"),
                None,
            )
            .send()
            .await
            .unwrap();
            let status = res.status().as_u16();
            let bytes = res.bytes().await.unwrap();
            (w, fit, status, bytes)
        });
    for (w, fit, status, bytes) in futures_util::future::join_all(asks).await {
        assert_eq!(
            status,
            200,
            "{w} {fit}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let img = image::load_from_memory(&bytes).unwrap();
        let expected = if fit == "cover" {
            (w.min(400), w.min(300))
        } else {
            (w, w * 3 / 4)
        };
        assert_eq!((img.width(), img.height()), expected, "{w} {fit}");
    }

    // A 16-bit image decodes at 8 bytes a pixel and is converted beside itself: charged for
    // that once its header is read (a review saw twice the budget used). At 600 x 600 the
    // 8-bit file fits the 2 MiB budget; the 16-bit one, 4.3 MB of buffers, does not.
    let sixteen = {
        // One colour: a file of a few hundred bytes, so only the header's depth can tell.
        let img = image::DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
            600,
            600,
            image::Rgba([1000u16, 2000, 0, u16::MAX]),
        ));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    for (name, bytes, want) in [
        ("eight.png", png(600, 600), 200),
        ("sixteen.png", sixteen, 422),
    ] {
        let file = json_ok(upload(app, Some(&ada), &b, form(name, bytes)).await, 201).await;
        let res = api(
            app,
            Method::GET,
            &format!(
                "/files/{}/preview?width=16&format=png",
                file["id"].as_str().unwrap()
            ),
            None,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.status().as_u16(), want, "{name}");
    }

    let big = json_ok(
        upload(app, Some(&ada), &b, form("big.png", png(1000, 1000))).await,
        201,
    )
    .await;
    for who in [None, Some(&ada)] {
        let p = problem(
            api(
                app,
                Method::GET,
                &format!(
                    "/files/{}/preview?width=16&format=png",
                    big["id"].as_str().unwrap()
                ),
                who,
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(422), Some("image_too_large")),
            "{p}"
        );
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("storage.decode_memory_budget_bytes"),
            "{p}"
        );
    }
}

/// Starts a resumable upload; returns the response.
async fn create(
    app: &TestApp,
    who: Option<&super::Account>,
    bucket: &str,
    length: usize,
    meta: &str,
) -> reqwest::Response {
    let mut req = api(
        app,
        Method::POST,
        &format!("/buckets/{bucket}/uploads"),
        who,
    )
    .header("tus-resumable", "1.0.0")
    .header("upload-length", length.to_string());
    if !meta.is_empty() {
        req = req.header("upload-metadata", meta);
    }
    req.send().await.unwrap()
}

/// The path (and query) of an upload's `Location`, under `/api/v1/storage`.
fn location(res: &reqwest::Response) -> String {
    let l = res.headers()["location"].to_str().unwrap();
    l[l.find("/uploads/").unwrap()..].to_owned()
}

fn tus(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&super::Account>,
) -> reqwest::RequestBuilder {
    api(app, method, path, who).header("tus-resumable", "1.0.0")
}

fn patch(
    app: &TestApp,
    path: &str,
    who: Option<&super::Account>,
    offset: usize,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    tus(app, Method::PATCH, path, who)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(body)
}

#[tokio::test]
async fn resumable_uploads_reserve_quota_until_they_end() {
    let s = storage(
        Backend::Local,
        &[
            ("BASALT__STORAGE__QUOTA_BYTES_PER_USER", "1000"),
            ("BASALT__STORAGE__MAX_OPEN_UPLOADS_PER_USER", "3"),
            ("BASALT__STORAGE__EXPIRE_UPLOADS_MS", "200"),
        ],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let first = create(app, Some(&ada), &b, 600, "").await;
    assert_eq!(first.status(), 201);
    let first = location(&first);
    assert_eq!(usage(app, &ada).await, 600, "reserved at creation");
    let p = problem(create(app, Some(&ada), &b, 600, "").await).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(507), Some("quota_exceeded"))
    );
    // Ending it gives the reservation back.
    assert_eq!(
        tus(app, Method::DELETE, &first, Some(&ada))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(usage(app, &ada).await, 0);

    // Ten creations at once against 1000 bytes: three of 300 fit, never more.
    let tries = (0..10).map(|_| create(app, Some(&ada), &b, 300, ""));
    let results = futures_util::future::join_all(tries).await;
    let made: Vec<String> = results
        .iter()
        .filter(|r| r.status() == 201)
        .map(location)
        .collect();
    let codes: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(made.len(), 3, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 507), "{codes:?}");
    assert_eq!(usage(app, &ada).await, 900);
    // Open uploads are capped per payer, quota or not.
    let p = problem(create(app, Some(&ada), &b, 10, "").await).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(409), Some("limit_reached")),
        "{p}"
    );

    // Finishing swaps the reservation for the bytes stored.
    let res = patch(app, &made[0], Some(&ada), 0, vec![7u8; 300])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(usage(app, &ada).await, 900);
    // Expiry gives it back too.
    sqlx::query("UPDATE storage.uploads SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let expired = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM storage.uploads")
            .fetch_one(&app.db)
            .await
            .unwrap();
        open == 0
    })
    .await;
    assert!(expired, "uploads left after expiry");
    assert_eq!(usage(app, &ada).await, 300);
}

#[tokio::test]
async fn a_new_version_finishing_after_its_file_went_is_a_404() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({})).await;
    let file = json_ok(
        upload(app, Some(&ada), &b, form("v.txt", b"one".to_vec())).await,
        201,
    )
    .await;
    let id = file["id"].as_str().unwrap();
    let meta = format!("filename {},file_id {}", base64_of("v.txt"), base64_of(id));
    let created = create(app, Some(&ada), &b, 10, &meta).await;
    assert_eq!(created.status(), 201);
    let path = location(&created);
    assert_eq!(
        patch(app, &path, Some(&ada), 0, b"hello".to_vec())
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        api(app, Method::DELETE, &format!("/files/{id}"), Some(&ada))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let p = problem(
        patch(app, &path, Some(&ada), 5, b"world".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(404), Some("not_found")),
        "{p}"
    );
    assert_eq!(usage(app, &ada).await, 0, "nothing stays charged");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn anonymous_resumable_uploads_belong_to_their_secret() {
    let s = storage(Backend::Local, &[]).await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let created = create(
        app,
        None,
        &b,
        10,
        &format!("filename {}", base64_of("a.txt")),
    )
    .await;
    assert_eq!(created.status(), 201);
    let with_token = location(&created);
    let token = created.headers()["upload-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        with_token.ends_with(&format!("?token={token}")),
        "{with_token}"
    );
    let bare = with_token.split('?').next().unwrap().to_owned();

    // Another anonymous caller, or anyone signed in, knowing only the id: nothing.
    for who in [None, Some(&ada)] {
        assert_eq!(
            tus(app, Method::HEAD, &bare, who)
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        let p = problem(
            patch(app, &bare, who, 0, b"stolen".to_vec())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(p["status"], 404);
        assert_eq!(
            tus(app, Method::DELETE, &bare, who)
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
    let wrong = format!("{bare}?token=AAAA{}", &token[4..]);
    assert_eq!(
        tus(app, Method::HEAD, &wrong, None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The holder of the URL, or of the token as a header, resumes it.
    assert_eq!(
        patch(app, &with_token, None, 0, b"hello".to_vec())
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let head = tus(app, Method::HEAD, &bare, None)
        .header("upload-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["upload-offset"], "5");
    assert_eq!(
        patch(app, &with_token, None, 5, b"world".to_vec())
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let listed = super::files_in(app, &ada, &b).await;
    assert_eq!(listed["items"][0]["name"], "a.txt");
}

#[tokio::test]
async fn anonymous_uploads_have_their_own_caps_and_never_block_the_owner() {
    let s = storage(
        Backend::Local,
        &[
            ("BASALT__STORAGE__MAX_OPEN_UPLOADS_PER_USER", "2"),
            (
                "BASALT__STORAGE__MAX_ANONYMOUS_OPEN_UPLOADS_PER_BUCKET",
                "3",
            ),
            ("BASALT__STORAGE__MAX_ANONYMOUS_OPEN_UPLOADS_PER_IP", "2"),
            ("BASALT__SERVER__TRUST_FORWARDED_FOR", "true"),
        ],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let other = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let anonymous = |bucket: &str, ip: &str| {
        api(
            app,
            Method::POST,
            &format!("/buckets/{bucket}/uploads"),
            None,
        )
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header("x-forwarded-for", ip)
        .send()
    };
    let refused = |p: serde_json::Value| {
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(409), Some("anonymous_limit_reached")),
            "{p}"
        );
    };
    // One address: two at once, whichever way they race, then no more in this bucket.
    let tries = (0..4).map(|_| anonymous(&b, "203.0.113.1"));
    let codes: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 2, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    refused(problem(anonymous(&b, "203.0.113.1").await.unwrap()).await);
    // Another address takes the bucket's last anonymous place, then the bucket is full.
    assert_eq!(anonymous(&b, "203.0.113.2").await.unwrap().status(), 201);
    refused(problem(anonymous(&b, "203.0.113.3").await.unwrap()).await);
    // Other buckets have caps of their own.
    assert_eq!(
        anonymous(&other, "203.0.113.1").await.unwrap().status(),
        201
    );
    // Four anonymous uploads paid for by Ada, and she still has both of her own places.
    for _ in 0..2 {
        assert_eq!(create(app, Some(&ada), &b, 10, "").await.status(), 201);
    }
    let p = problem(create(app, Some(&ada), &b, 10, "").await).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(409), Some("limit_reached")),
        "{p}"
    );
}

/// A review found two anonymous 5 GiB uploads holding the owner's whole quota while
/// sending nothing, and the per-address cap counting single IPv6 addresses.
#[tokio::test]
async fn anonymous_reservations_are_capped_in_bytes_and_ipv6_counts_by_its_64() {
    let s = storage(
        Backend::Local,
        &[
            ("BASALT__STORAGE__MAX_ANONYMOUS_OPEN_UPLOADS_PER_IP", "1"),
            (
                "BASALT__STORAGE__MAX_ANONYMOUS_RESERVED_BYTES_PER_BUCKET",
                "100",
            ),
            ("BASALT__SERVER__TRUST_FORWARDED_FOR", "true"),
        ],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let v6 = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let anonymous = |bucket: &str, ip: &str, length: u64| {
        api(
            app,
            Method::POST,
            &format!("/buckets/{bucket}/uploads"),
            None,
        )
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("x-forwarded-for", ip)
        .send()
    };
    let status = |res: reqwest::Result<reqwest::Response>| res.unwrap().status().as_u16();
    assert_eq!(status(anonymous(&b, "203.0.113.1", 60).await), 201);
    let p = problem(anonymous(&b, "203.0.113.2", 60).await.unwrap()).await;
    assert_eq!(p["code"], "anonymous_limit_reached", "{p}");
    assert_eq!(status(anonymous(&b, "203.0.113.2", 40).await), 201);
    // One /64 is one address; the next /64 is another.
    assert_eq!(status(anonymous(&v6, "2001:db8:1:2::1", 1).await), 201);
    assert_eq!(status(anonymous(&v6, "2001:db8:1:2::ffff", 1).await), 409);
    assert_eq!(status(anonymous(&v6, "2001:db8:1:3::1", 1).await), 201);
    // The owner is not held back by any of it.
    assert_eq!(create(app, Some(&ada), &b, 500, "").await.status(), 201);
}

#[tokio::test]
async fn uploads_never_started_expire_soon_and_started_ones_keep_the_full_expiry() {
    let s = storage(
        Backend::Local,
        &[
            ("BASALT__STORAGE__QUOTA_BYTES_PER_USER", "1000"),
            ("BASALT__STORAGE__UNSTARTED_UPLOAD_EXPIRY_SECS", "4"),
            ("BASALT__STORAGE__EXPIRE_UPLOADS_MS", "200"),
        ],
    )
    .await;
    let app = &s.app;
    let ada = account(app, &["user"]);
    let b = bucket(app, &ada, json!({"permissions": {"create": ["any"]}})).await;
    let expires = |res: &reqwest::Response| {
        chrono::DateTime::parse_from_rfc2822(res.headers()["upload-expires"].to_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let idle = create(app, None, &b, 400, "").await;
    assert_eq!(idle.status(), 201);
    let soon = expires(&idle) - chrono::Utc::now();
    assert!(soon <= chrono::Duration::seconds(5), "{soon}");
    let idle = location(&idle);
    let started = create(app, Some(&ada), &b, 400, "").await;
    assert_eq!(started.status(), 201);
    let started = location(&started);
    assert_eq!(usage(app, &ada).await, 800, "both reserved");
    assert_eq!(
        patch(app, &started, Some(&ada), 0, b"hello".to_vec())
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // The expiry job removes the one never started, and gives its reservation back.
    let gone = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        usage(app, &ada).await == 400
    })
    .await;
    assert!(gone, "the upload never started is still reserved");
    assert_eq!(
        tus(app, Method::HEAD, &idle, None)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The started one is there, with the full expiry (24 hours from its creation).
    let head = tus(app, Method::HEAD, &started, Some(&ada))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["upload-offset"], "5");
    let left = expires(&head) - chrono::Utc::now();
    assert!(left > chrono::Duration::hours(23), "{left}");
}
