//! Resizing (`fast_image_resize`) and re-encoding without metadata.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, RgbImage};

use super::{OutputFormat, ThumbnailError};

/// Resizes to exactly `w` × `h` (Lanczos3), as RGB8 or RGBA8.
pub(super) fn resize(src: &DynamicImage, w: u32, h: u32) -> Result<DynamicImage, ThumbnailError> {
    let src = if src.color().has_alpha() {
        DynamicImage::ImageRgba8(src.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(src.to_rgb8())
    };
    if src.width() == w && src.height() == h {
        return Ok(src);
    }
    let mut dst = DynamicImage::new(w, h, src.color());
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .map_err(|e| ThumbnailError::Encode(format!("resize: {e}")))?;
    Ok(dst)
}

/// Flattens transparency onto white.
fn flatten(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// Encodes pixels only: no metadata of the source is carried over.
pub(super) fn encode(img: &DynamicImage, format: OutputFormat) -> Result<Vec<u8>, ThumbnailError> {
    let mut out = Vec::new();
    let err = |e: image::ImageError| ThumbnailError::Encode(e.to_string());
    match format {
        OutputFormat::Jpeg { quality } => {
            let rgb = flatten(img);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    ExtendedColorType::Rgb8,
                )
                .map_err(err)?;
        }
        OutputFormat::WebP => {
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            if img.color().has_alpha() {
                let rgba = img.to_rgba8();
                enc.write_image(
                    rgba.as_raw(),
                    rgba.width(),
                    rgba.height(),
                    ExtendedColorType::Rgba8,
                )
                .map_err(err)?;
            } else {
                let rgb = img.to_rgb8();
                enc.write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    ExtendedColorType::Rgb8,
                )
                .map_err(err)?;
            }
        }
    }
    Ok(out)
}
