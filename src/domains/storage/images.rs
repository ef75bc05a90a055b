//! Image variants and previews: decoding under limits (decompression bombs stop at the
//! header), resizing to fit, and encoding. CPU-bound: callers run it on the blocking pool.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the box exactly, cropping what overflows (thumbnails).
    Cover,
    /// Fit inside the box, keeping the whole image.
    #[default]
    Contain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Jpeg,
    Png,
    /// Lossless WebP.
    Webp,
}

impl Fit {
    /// As in URLs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
        }
    }
}

impl Format {
    /// As in URLs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

/// One variant a bucket makes of every image uploaded to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "thumbnail", "width": 200, "height": 200, "fit": "cover", "format": "webp"}))]
pub struct VariantSpec {
    /// Letters, digits, `_` and `-`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub fit: Fit,
    #[serde(default)]
    pub format: Format,
}

/// Image types that are decoded for variants and previews.
pub fn is_processable(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    )
}

pub struct ImageLimits {
    pub max_pixels: u64,
    pub max_dimension: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image is {0}x{1}, past the {2} pixels or {3} per side allowed")]
    TooLarge(u32, u32, u64, u32),
    #[error(
        "the image needs about {0} bytes to decode and resize at this size, more than the {1} bytes of `storage.decode_memory_budget_bytes`"
    )]
    OverBudget(u64, u64),
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ImageError> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Unreadable(e.to_string()))
}

/// The dimensions in the header, if the bytes hold it (a prefix of the file may do).
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    reader(bytes).ok()?.into_dimensions().ok()
}

/// Refuses dimensions past the limits, before anything is decoded.
pub fn check_dimensions(w: u32, h: u32, limits: &ImageLimits) -> Result<(), ImageError> {
    if w > limits.max_dimension
        || h > limits.max_dimension
        || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(ImageError::TooLarge(
            w,
            h,
            limits.max_pixels,
            limits.max_dimension,
        ));
    }
    Ok(())
}

/// Bytes a pixel the decoder will produce (its colour type, read from the header): 3 or 4
/// for most files, 6 or 8 for 16-bit ones, which `decode_cost`'s four bytes undercount.
pub fn decoded_pixel_bytes(bytes: &[u8]) -> Option<u64> {
    use image::ImageDecoder;
    let decoder = reader(bytes).ok()?.into_decoder().ok()?;
    Some(u64::from(decoder.color_type().bytes_per_pixel()))
}

/// Decodes after checking the header's dimensions, with the decoder's own allocation limit
/// as a second guard (a header may lie).
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, ImageError> {
    let (w, h) =
        dimensions(bytes).ok_or_else(|| ImageError::Unreadable("no image header".into()))?;
    check_dimensions(w, h, limits)?;
    let mut r = reader(bytes)?;
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    // Eight bytes per pixel covers 16-bit RGBA, the widest layout the decoders produce.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    r.limits(l);
    r.decode()
        .map_err(|e| ImageError::Unreadable(e.to_string()))
}

/// The size a render comes out at, and whether it needs resampling: `Contain` fits inside
/// the box keeping the aspect ratio (as `image`'s `resize` rounds), `Cover` fills the box
/// (clamped to the image, so never enlarged) and crops what overflows. A box the image
/// already fits in keeps the image's size.
pub fn output_size(src_w: u32, src_h: u32, width: u32, height: u32, fit: Fit) -> (u32, u32) {
    let (width, height) = (width.max(1), height.max(1));
    match fit {
        Fit::Cover => (width.min(src_w), height.min(src_h)),
        Fit::Contain if src_w <= width && src_h <= height => (src_w, src_h),
        Fit::Contain => {
            let ratio =
                (f64::from(width) / f64::from(src_w)).min(f64::from(height) / f64::from(src_h));
            let side = |s: u32| ((f64::from(s) * ratio).round() as u32).max(1);
            (side(src_w), side(src_h))
        }
    }
}

/// About the most memory rendering `boxes` of a `src_w` x `src_h` image (whose file is
/// `original_bytes` long) takes at once, counting four bytes a pixel: while decoding, the
/// original and the decoded image; then the decoded image, and for each box the resizer's
/// intermediate (u8 resizing runs the vertical pass first, into source width x output
/// height) and the output. What the decode memory budget is charged before decoding.
pub fn decode_cost(src_w: u32, src_h: u32, original_bytes: u64, boxes: &[(u32, u32, Fit)]) -> u64 {
    let px = |w: u32, h: u32| u64::from(w) * u64::from(h) * 4;
    let renders: u64 = boxes
        .iter()
        .map(|&(w, h, fit)| {
            let (ow, oh) = output_size(src_w, src_h, w, h, fit);
            let temp = if (ow, oh) == (src_w, src_h) {
                0
            } else {
                px(src_w, oh)
            };
            temp + px(ow, oh)
        })
        .sum();
    px(src_w, src_h) + original_bytes.max(renders)
}

/// A decoded image ready to render: 8-bit RGB, or RGBA with its colours premultiplied by
/// alpha in place (so resampling does not bleed the colour of transparent pixels, without the
/// resizer's own premultiplied copy of the whole image).
pub struct Source {
    img: DynamicImage,
    premultiplied: bool,
}

impl Source {
    /// Converts to 8-bit RGB or RGBA (a no-op for what decoders usually produce). Pass
    /// whether any render will resample: only then is alpha premultiplied.
    pub fn new(img: DynamicImage, resamples: bool) -> Result<Self, ImageError> {
        let mut img = if img.color().has_alpha() {
            DynamicImage::ImageRgba8(img.into_rgba8())
        } else {
            DynamicImage::ImageRgb8(img.into_rgb8())
        };
        let premultiplied = resamples && img.color().has_alpha();
        if premultiplied {
            fast_image_resize::MulDiv::default()
                .multiply_alpha_inplace(&mut img)
                .map_err(|e| ImageError::Unreadable(e.to_string()))?;
        }
        Ok(Self { img, premultiplied })
    }

    pub fn width(&self) -> u32 {
        self.img.width()
    }

    pub fn height(&self) -> u32 {
        self.img.height()
    }
}

/// Resizes to the box and encodes; returns the bytes and the result's dimensions. Resampling
/// is `fast_image_resize`'s u8 SIMD convolution (bilinear, as `image`'s `Triangle`), which
/// needs no f32 copy of the image: the output and one intermediate are all it allocates.
pub fn render(
    src: &Source,
    width: u32,
    height: u32,
    fit: Fit,
    format: Format,
) -> Result<(Vec<u8>, u32, u32), ImageError> {
    let failed = |e: &dyn std::fmt::Display| ImageError::Unreadable(e.to_string());
    let (ow, oh) = output_size(src.width(), src.height(), width, height, fit);
    let mut out = match &src.img {
        DynamicImage::ImageRgba8(_) => DynamicImage::new_rgba8(ow, oh),
        _ => DynamicImage::new_rgb8(ow, oh),
    };
    let mut options = fast_image_resize::ResizeOptions::new()
        .resize_alg(fast_image_resize::ResizeAlg::Convolution(
            fast_image_resize::FilterType::Bilinear,
        ))
        // Alpha is premultiplied once in `Source::new`, not per render.
        .use_alpha(false);
    if fit == Fit::Cover {
        options = options.fit_into_destination(None);
    }
    // Same size (nothing to resample) is a plain copy.
    fast_image_resize::Resizer::new()
        .resize(&src.img, &mut out, &options)
        .map_err(|e| failed(&e))?;
    if src.premultiplied {
        fast_image_resize::MulDiv::default()
            .divide_alpha_inplace(&mut out)
            .map_err(|e| failed(&e))?;
    }
    let out = match format {
        // JPEG has no alpha channel.
        Format::Jpeg => DynamicImage::ImageRgb8(out.into_rgb8()),
        Format::Webp => DynamicImage::ImageRgba8(out.into_rgba8()),
        Format::Png => out,
    };
    let mut bytes = Vec::new();
    let image_format = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
    };
    out.write_to(&mut Cursor::new(&mut bytes), image_format)
        .map_err(|e| failed(&e))?;
    Ok((bytes, out.width(), out.height()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30])));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    const LIMITS: ImageLimits = ImageLimits {
        max_pixels: 1_000_000,
        max_dimension: 2000,
    };

    #[test]
    fn variants_fit_their_box() {
        let img = Source::new(decode(&png(400, 200), &LIMITS).unwrap(), true).unwrap();
        let (_, w, h) = render(&img, 100, 100, Fit::Contain, Format::Jpeg).unwrap();
        assert_eq!((w, h), (100, 50));
        let (bytes, w, h) = render(&img, 100, 100, Fit::Cover, Format::Webp).unwrap();
        assert_eq!((w, h), (100, 100));
        assert_eq!(&bytes[8..12], b"WEBP");
        let (_, w, h) = render(&img, 1000, 1000, Fit::Contain, Format::Png).unwrap();
        assert_eq!((w, h), (400, 200), "never enlarged");
    }

    #[test]
    fn sixteen_bit_images_are_known_before_decoding() {
        let encode = |img: DynamicImage| {
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, ImageFormat::Png).unwrap();
            out.into_inner()
        };
        let wide = encode(DynamicImage::ImageRgba16(image::ImageBuffer::new(8, 8)));
        let narrow = encode(DynamicImage::ImageRgba8(image::ImageBuffer::new(8, 8)));
        assert_eq!(decoded_pixel_bytes(&wide), Some(8));
        assert_eq!(decoded_pixel_bytes(&narrow), Some(4));
        assert_eq!(decoded_pixel_bytes(b"not an image"), None);
    }

    #[test]
    fn decode_cost_counts_the_source_intermediate_and_output() {
        const MIB: u64 = 1024 * 1024;
        // The largest preview of the largest image previews allow: 64 MiB decoded, 60 MiB
        // for the vertical pass (4096 x 3840), 56.25 MiB out; within the default budget.
        let worst = decode_cost(4096, 4096, 0, &[(3840, 3840, Fit::Contain)]);
        assert_eq!(worst, 64 * MIB + 60 * MIB + 3840 * 3840 * 4);
        assert!(worst < 192 * MIB);
        // A thumbnail costs little beyond the decoded image; an original larger than what the
        // renders need counts instead of them (both are held while decoding).
        let thumb = decode_cost(4096, 4096, 0, &[(16, 16, Fit::Cover)]);
        assert_eq!(thumb, 64 * MIB + 4096 * 16 * 4 + 16 * 16 * 4);
        assert_eq!(
            decode_cost(4096, 4096, 100 * MIB, &[(16, 16, Fit::Cover)]),
            164 * MIB
        );
        // Nothing to resample: no intermediate.
        assert_eq!(
            decode_cost(100, 100, 0, &[(200, 200, Fit::Contain)]),
            2 * 100 * 100 * 4
        );
    }

    #[test]
    fn transparent_pixels_do_not_bleed_into_the_resized_image() {
        // Left half opaque red, right half fully transparent green: a resize that ignored
        // alpha would blend green into the red edge.
        let img = image::RgbaImage::from_fn(64, 64, |x, _| {
            if x < 32 {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 255, 0, 0])
            }
        });
        let src = Source::new(DynamicImage::ImageRgba8(img), true).unwrap();
        let (bytes, w, h) = render(&src, 16, 16, Fit::Contain, Format::Png).unwrap();
        assert_eq!((w, h), (16, 16));
        let out = image::load_from_memory(&bytes).unwrap().into_rgba8();
        for x in 0..16 {
            let p = out.get_pixel(x, 8);
            if p[3] > 0 {
                assert!(p[1] < 8, "green bled in at {x}: {p:?}");
            }
        }
    }

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

    #[test]
    fn huge_headers_are_refused_before_decoding() {
        // A valid PNG header (checksum and all) claiming 30000 x 30000 pixels.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&30000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&30000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode(&bomb, &LIMITS),
            Err(ImageError::TooLarge(30000, 30000, ..))
        ));
        assert!(decode(b"not an image", &LIMITS).is_err());
    }
}
