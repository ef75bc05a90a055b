//! Storage benchmark against a running server (`scripts/bench.sh` starts the release binary
//! and passes its address, process id and a token):
//! 1. a 1 GiB upload (streamed multipart) and download, in MB/s, with the server's resident
//!    memory sampled throughout, so a flat peak shows nothing is buffered whole;
//! 2. the time to make three variants of a 12-megapixel JPEG, from the upload's answer to the
//!    variants being listed, and of a first (uncached) and second (cached) preview;
//! 3. the same wait for 20 small photos, where the job's wake-up, not decoding, dominates;
//! 4. 20 anonymous previews at once of a 10000x10000 PNG in a public bucket (issue #11: one
//!    took ~1 GB before previews were bounded), then 20 distinct previews at once of a
//!    4096x4096 one (the largest that gets previews), with the server's peak RSS for each.
//!
//! `BENCH_ONLY=previews` runs part 4 alone.
//!
//! `BENCH_BASE_URL=http://127.0.0.1:PORT BENCH_TOKEN=... BENCH_SERVER_PID=... cargo bench --bench storage`

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const GIB: u64 = 1024 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the server's RSS every 50 ms until stopped; returns the highest seen.
fn watch_rss(pid: String) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let p = peak.clone();
    let handle = tokio::spawn(async move {
        loop {
            p.fetch_max(rss_kib(&pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (peak, handle)
}

/// Incompressible, cheap bytes (xorshift), produced as the upload goes.
fn generated(total: u64) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut sent = 0u64;
    futures_util::stream::iter(std::iter::from_fn(move || {
        if sent >= total {
            return None;
        }
        let n = CHUNK.min((total - sent) as usize);
        let mut buf = vec![0u8; n];
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        sent += n as u64;
        Some(Ok(buf))
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    let base =
        std::env::var("BENCH_BASE_URL").map_err(|_| anyhow::anyhow!("set BENCH_BASE_URL"))?;
    let token = std::env::var("BENCH_TOKEN").map_err(|_| anyhow::anyhow!("set BENCH_TOKEN"))?;
    let pid =
        std::env::var("BENCH_SERVER_PID").map_err(|_| anyhow::anyhow!("set BENCH_SERVER_PID"))?;
    let size: u64 = std::env::var("BENCH_FILE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GIB);
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{base}/api/v1/storage{path}");
    if std::env::var("BENCH_ONLY").as_deref() == Ok("previews") {
        return previews(&http, &base, &token, &pid).await;
    }

    let bucket: Value = http
        .post(api("/buckets"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let bucket = bucket["id"].as_str().unwrap_or_default().to_owned();
    println!(
        "server RSS before: {:.1} MiB",
        rss_kib(&pid) as f64 / 1024.0
    );

    // 1. One large file up and down.
    let (peak, watcher) = watch_rss(pid.clone());
    let part = Part::stream_with_length(reqwest::Body::wrap_stream(generated(size)), size)
        .file_name("large.bin");
    let started = Instant::now();
    let res = http
        .post(api(&format!("/buckets/{bucket}/files")))
        .bearer_auth(&token)
        .multipart(Form::new().part("file", part))
        .send()
        .await?;
    let status = res.status();
    let file: Value = res.json().await?;
    anyhow::ensure!(status.is_success(), "upload: {status} {file}");
    let secs = started.elapsed().as_secs_f64();
    let mb = size as f64 / 1_000_000.0;
    println!(
        "upload {:.0} MiB: {:.1} s, {:.0} MB/s; server RSS peak {:.1} MiB",
        size as f64 / 1048576.0,
        secs,
        mb / secs,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    let id = file["id"].as_str().unwrap_or_default().to_owned();

    peak.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let res = http
        .get(api(&format!("/files/{id}/download")))
        .bearer_auth(&token)
        .send()
        .await?;
    let mut stream = res.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
    }
    anyhow::ensure!(got == size, "downloaded {got} of {size}");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "download: {:.1} s, {:.0} MB/s; server RSS peak {:.1} MiB",
        secs,
        mb / secs,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    watcher.abort();
    http.delete(api(&format!("/files/{id}")))
        .bearer_auth(&token)
        .send()
        .await?;

    // 2. Variants of a 12-megapixel JPEG.
    let variants = json!([
        {"name": "thumbnail", "width": 200, "height": 200, "fit": "cover", "format": "webp"},
        {"name": "small", "width": 640, "height": 640},
        {"name": "medium", "width": 1280, "height": 1280}
    ]);
    let images: Value = http
        .post(api("/buckets"))
        .bearer_auth(&token)
        .json(&json!({"name": "images", "variants": variants}))
        .send()
        .await?
        .json()
        .await?;
    let images = images["id"].as_str().unwrap_or_default().to_owned();
    let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
    let started = Instant::now();
    let res = http
        .post(api(&format!("/buckets/{images}/files")))
        .bearer_auth(&token)
        .multipart(Form::new().part("file", Part::bytes(jpeg.clone()).file_name("photo.jpg")))
        .send()
        .await?;
    let photo: Value = res.json().await?;
    let uploaded = started.elapsed();
    let id = photo["id"].as_str().unwrap_or_default().to_owned();
    wait_for_variants(&http, &api(&format!("/files/{id}")), &token, 3).await?;
    println!(
        "12 MP JPEG ({:.1} MB): upload answered in {:.0} ms; three variants listed {:.0} ms after the answer",
        jpeg.len() as f64 / 1e6,
        uploaded.as_secs_f64() * 1000.0,
        (started.elapsed() - uploaded).as_secs_f64() * 1000.0
    );
    for label in ["first (made)", "second (cached)"] {
        let started = Instant::now();
        let res = http
            .get(api(&format!("/files/{id}/preview?width=800&height=600")))
            .bearer_auth(&token)
            .send()
            .await?;
        let n = res.bytes().await?.len();
        println!(
            "preview 800x600, {label}: {:.0} ms ({n} bytes)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }

    // 3. Variants of small photos, where waiting for the job, not decoding, is most of the
    // time: from each upload's answer to its three variants being listed.
    let small = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(small)
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
    let mut waits = Vec::new();
    for _ in 0..20 {
        let res = http
            .post(api(&format!("/buckets/{images}/files")))
            .bearer_auth(&token)
            .multipart(Form::new().part("file", Part::bytes(jpeg.clone()).file_name("small.jpg")))
            .send()
            .await?;
        let answered = Instant::now();
        let photo: Value = res.json().await?;
        let id = photo["id"].as_str().unwrap_or_default().to_owned();
        wait_for_variants(&http, &api(&format!("/files/{id}")), &token, 3).await?;
        waits.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    waits.sort_by(f64::total_cmp);
    println!(
        "640x480 JPEG, 20 uploads: three variants listed p50 {:.0} ms, max {:.0} ms after the answer",
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );
    println!("server RSS after: {:.1} MiB", rss_kib(&pid) as f64 / 1024.0);
    previews(&http, &base, &token, &pid).await
}

/// A PNG of one colour (it compresses to a few hundred kB however large).
fn flat_png(side: u32) -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb([200, 120, 40]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// Part 4: previews cannot take a replica's memory, however many are asked for at once.
async fn previews(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    pid: &str,
) -> anyhow::Result<()> {
    let api = |path: &str| format!("{base}/api/v1/storage{path}");
    let public: Value = http
        .post(api("/buckets"))
        .bearer_auth(token)
        .json(&json!({"name": "previews", "public": true}))
        .send()
        .await?
        .json()
        .await?;
    let public = public["id"].as_str().unwrap_or_default().to_owned();
    for (side, distinct) in [(10_000u32, false), (4096, true)] {
        let png = flat_png(side)?;
        let res = http
            .post(api(&format!("/buckets/{public}/files")))
            .bearer_auth(token)
            .multipart(Form::new().part("file", Part::bytes(png.clone()).file_name("big.png")))
            .send()
            .await?;
        let status = res.status();
        let file: Value = res.json().await?;
        anyhow::ensure!(status.is_success(), "upload: {status} {file}");
        let id = file["id"].as_str().unwrap_or_default().to_owned();
        let before = rss_kib(pid);
        let (peak, watcher) = watch_rss(pid.to_owned());
        let started = Instant::now();
        // Anonymous, as anyone may ask of a public bucket; for the smaller image each request
        // asks for a preview not made yet (16 snapped widths, two fits).
        let asks = (0..20).map(|i| {
            let query = if distinct {
                let widths = [
                    16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840,
                ];
                let fit = if i < 16 { "contain" } else { "cover" };
                format!("width={}&height=4000&fit={fit}&format=png", widths[i % 16])
            } else {
                "width=4000&height=4000&format=png".to_owned()
            };
            let url = api(&format!("/files/{id}/preview?{query}"));
            async move {
                let res = http.get(url).send().await?;
                let status = res.status().as_u16();
                res.bytes().await?;
                Ok::<u16, reqwest::Error>(status)
            }
        });
        let statuses = futures_util::future::join_all(asks).await;
        let secs = started.elapsed().as_secs_f64();
        watcher.abort();
        let mut counts = std::collections::BTreeMap::new();
        for s in statuses {
            *counts.entry(s?).or_insert(0) += 1;
        }
        println!(
            "20 previews at once of a {side}x{side} PNG ({:.0} kB{}): {counts:?} in {secs:.1} s; server RSS before {:.1} MiB, peak {:.1} MiB",
            png.len() as f64 / 1e3,
            if distinct {
                ", 20 distinct sizes"
            } else {
                ", all 4000x4000"
            },
            before as f64 / 1024.0,
            peak.load(Ordering::Relaxed) as f64 / 1024.0
        );
    }
    Ok(())
}

/// Polls a file every 5 ms until it lists `n` variants (two minutes at most).
async fn wait_for_variants(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let f: Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if f["variants"].as_array().is_some_and(|v| v.len() == n) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "variants not made: {f}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
