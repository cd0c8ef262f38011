//! Thumbnails: orientation, metadata stripping, formats, sizes and bad
//! input. Every image is generated here.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::images::*;
use image::{DynamicImage, GenericImageView, RgbImage, RgbaImage};
use samtale_media::thumbnail::{
    OutputFormat, SourceFormat, ThumbnailError, ThumbnailLimits, ThumbnailSpec, probe, thumbnails,
};

const JPEG: OutputFormat = OutputFormat::Jpeg { quality: 90 };

fn spec(w: u32, h: u32, format: OutputFormat) -> ThumbnailSpec {
    ThumbnailSpec {
        max_width: w,
        max_height: h,
        format,
    }
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

fn color_at(img: &DynamicImage, fx: f32, fy: f32) -> [u8; 3] {
    let (w, h) = img.dimensions();
    let p = img
        .get_pixel((w as f32 * fx) as u32, (h as f32 * fy) as u32)
        .0;
    [p[0], p[1], p[2]]
}

fn assert_quadrants(img: &DynamicImage, what: &str) {
    for (fx, fy, want, name) in [
        (0.25, 0.25, RED, "top-left red"),
        (0.75, 0.25, GREEN, "top-right green"),
        (0.25, 0.75, BLUE, "bottom-left blue"),
        (0.75, 0.75, WHITE, "bottom-right white"),
    ] {
        let got = color_at(img, fx, fy);
        assert!(close(got, want, 60), "{what}: expected {name}, got {got:?}");
    }
}

#[test]
fn all_eight_exif_orientations_are_applied() {
    let displayed = quadrants(256, 128);
    for o in 1..=8u16 {
        let stored = stored_for(&displayed, o);
        let jpeg = jpeg_with_exif(&stored, Some(&exif_block(o, false)));
        // 64 px box: the JPEG path shrinks on decode (1/4), then resizes.
        for format in [JPEG, OutputFormat::WebP] {
            let out =
                thumbnails(&jpeg, &[spec(64, 64, format)], &ThumbnailLimits::default()).unwrap();
            assert_eq!((out[0].width, out[0].height), (64, 32), "orientation {o}");
            let img = decode(&out[0].bytes);
            assert_eq!(img.dimensions(), (64, 32), "orientation {o}");
            assert_quadrants(&img, &format!("orientation {o}, {format:?}"));
        }
    }
}

#[test]
fn gps_and_all_exif_are_stripped() {
    let exif = exif_block(6, true);
    // Sanity: the EXIF block is well-formed (its orientation is readable).
    assert_eq!(
        image::metadata::Orientation::from_exif_chunk(&exif),
        Some(image::metadata::Orientation::Rotate90)
    );
    let input = jpeg_with_exif(&stored_for(&quadrants(200, 100), 6), Some(&exif));
    assert!(
        contains(&input, GPS_MARKER),
        "test input must carry the GPS block"
    );
    let out = thumbnails(
        &input,
        &[spec(100, 100, JPEG), spec(100, 100, OutputFormat::WebP)],
        &ThumbnailLimits::default(),
    )
    .unwrap();
    for t in &out {
        assert!(
            !contains(&t.bytes, GPS_MARKER),
            "{:?} kept the GPS data",
            t.format
        );
        assert!(
            !contains(&t.bytes, b"Exif"),
            "{:?} kept an EXIF block",
            t.format
        );
        assert!(
            !contains(&t.bytes, b"MM\x00\x2a"),
            "{:?} kept a TIFF header",
            t.format
        );
        assert_quadrants(&decode(&t.bytes), "stripped output still oriented");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn outputs_at_configured_sizes_and_formats() {
    let input = jpeg_with_exif(&noise(1600, 1200), None);
    let out = thumbnails(
        &input,
        &[
            spec(320, 320, JPEG),
            spec(1080, 1080, OutputFormat::WebP),
            spec(4000, 4000, JPEG),
        ],
        &ThumbnailLimits::default(),
    )
    .unwrap();
    let dims: Vec<_> = out.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(
        dims,
        [(320, 240), (1080, 810), (1600, 1200)],
        "never enlarged"
    );
    assert_eq!(
        image::guess_format(&out[0].bytes).unwrap(),
        image::ImageFormat::Jpeg
    );
    assert_eq!(
        image::guess_format(&out[1].bytes).unwrap(),
        image::ImageFormat::WebP
    );
    assert_eq!(decode(&out[1].bytes).dimensions(), (1080, 810));
    assert_eq!(out[1].format.mime(), "image/webp");
}

#[test]
fn png_webp_and_gif_inputs() {
    let limits = ThumbnailLimits::default();
    // PNG with transparency: flattened onto white for JPEG, kept for WebP.
    let mut rgba = RgbaImage::from_pixel(200, 100, image::Rgba([255, 0, 0, 255]));
    for x in 100..200 {
        for y in 0..100 {
            rgba.put_pixel(x, y, image::Rgba([0, 0, 0, 0]));
        }
    }
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(rgba.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert_eq!(probe(&png, &limits).unwrap().format, SourceFormat::Png);
    let out = thumbnails(
        &png,
        &[spec(50, 50, JPEG), spec(50, 50, OutputFormat::WebP)],
        &limits,
    )
    .unwrap();
    let jpeg = decode(&out[0].bytes);
    assert!(close(color_at(&jpeg, 0.25, 0.5), RED, 40));
    assert!(
        close(color_at(&jpeg, 0.75, 0.5), WHITE, 40),
        "transparent → white"
    );
    let webp = decode(&out[1].bytes);
    assert_eq!(webp.get_pixel(40, 10).0[3], 0, "alpha kept in WebP");

    // WebP input.
    let mut webp_in = Vec::new();
    DynamicImage::ImageRgb8(quadrants(120, 60))
        .write_to(
            &mut std::io::Cursor::new(&mut webp_in),
            image::ImageFormat::WebP,
        )
        .unwrap();
    assert_eq!(probe(&webp_in, &limits).unwrap().format, SourceFormat::WebP);
    let out = thumbnails(&webp_in, &[spec(60, 60, JPEG)], &limits).unwrap();
    assert_quadrants(&decode(&out[0].bytes), "webp input");

    // GIF: the first frame (red), not the second (blue).
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for color in [[255, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = image::Frame::new(RgbaImage::from_pixel(40, 40, image::Rgba(color)));
            enc.encode_frame(frame).unwrap();
        }
    }
    assert_eq!(probe(&gif, &limits).unwrap().format, SourceFormat::Gif);
    let out = thumbnails(&gif, &[spec(20, 20, JPEG)], &limits).unwrap();
    let first = decode(&out[0].bytes);
    assert!(
        close(color_at(&first, 0.5, 0.5), RED, 40),
        "GIF first frame"
    );
}

#[test]
fn truncated_jpeg_is_a_clear_error() {
    let jpeg = jpeg_with_exif(&noise(256, 256), None);
    for cut in [jpeg.len() * 6 / 10, jpeg.len() / 3, 200, 3] {
        let err = thumbnails(
            &jpeg[..cut],
            &[spec(64, 64, JPEG)],
            &ThumbnailLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ThumbnailError::Truncated,
            "cut at {cut} of {}",
            jpeg.len()
        );
    }
}

#[test]
fn garbage_and_unsupported_formats_are_refused() {
    let limits = ThumbnailLimits::default();
    for input in [
        &b""[..],
        b"hello world",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ] {
        assert_eq!(
            probe(input, &limits).unwrap_err(),
            ThumbnailError::UnsupportedFormat
        );
    }
    let mut bmp = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::new(4, 4))
        .write_to(&mut std::io::Cursor::new(&mut bmp), image::ImageFormat::Bmp)
        .ok();
    if !bmp.is_empty() {
        assert_eq!(
            probe(&bmp, &limits).unwrap_err(),
            ThumbnailError::UnsupportedFormat
        );
    }
    assert_eq!(
        thumbnails(&png_declaring(10, 10), &[spec(0, 10, JPEG)], &limits).unwrap_err(),
        ThumbnailError::InvalidSpec
    );
}

#[test]
fn limits_are_checked_from_the_header() {
    let tight = ThumbnailLimits {
        max_input_bytes: 1000,
        max_pixels: 10_000,
        max_dimension: 500,
        max_alloc: 1 << 20,
    };
    assert!(matches!(
        probe(&vec![0u8; 1001], &tight),
        Err(ThumbnailError::InputTooLarge {
            size: 1001,
            limit: 1000
        })
    ));
    assert!(matches!(
        probe(&png_declaring(501, 1), &tight),
        Err(ThumbnailError::DimensionsTooLarge { width: 501, .. })
    ));
    assert!(matches!(
        probe(&png_declaring(101, 100), &tight),
        Err(ThumbnailError::TooManyPixels {
            width: 101,
            height: 100,
            limit: 10_000
        })
    ));
    // A JPEG whose frame header claims 60000 x 60000.
    let mut jpeg = jpeg_with_exif(&noise(16, 16), None);
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
    assert!(matches!(
        probe(&jpeg, &ThumbnailLimits::default()),
        Err(ThumbnailError::DimensionsTooLarge {
            width: 60000,
            height: 60000,
            ..
        })
    ));
    // Within the pixel limits but over the decoder's memory ceiling.
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(noise(1000, 1000))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mem = ThumbnailLimits {
        max_alloc: 1 << 20,
        ..ThumbnailLimits::default()
    };
    assert_eq!(
        thumbnails(&png, &[spec(10, 10, JPEG)], &mem).unwrap_err(),
        ThumbnailError::MemoryLimit
    );
}
