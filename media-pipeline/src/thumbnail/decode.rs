//! Header probing and bounded decoding.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use super::{SourceInfo, ThumbnailError, ThumbnailLimits, fit};

/// The input formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JPEG (decoded with shrink-on-decode).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless).
    WebP,
    /// GIF (first frame only).
    Gif,
}

pub(super) struct Decoded {
    pub image: DynamicImage,
    pub orientation: Orientation,
}

/// Whether an orientation swaps width and height.
pub(super) fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn check_size(input: &[u8], limits: &ThumbnailLimits) -> Result<(), ThumbnailError> {
    if input.len() > limits.max_input_bytes {
        return Err(ThumbnailError::InputTooLarge {
            size: input.len(),
            limit: limits.max_input_bytes,
        });
    }
    Ok(())
}

fn check_dimensions(w: u32, h: u32, limits: &ThumbnailLimits) -> Result<(), ThumbnailError> {
    if w == 0 || h == 0 {
        return Err(ThumbnailError::Malformed("zero-sized image".into()));
    }
    if w > limits.max_dimension || h > limits.max_dimension {
        return Err(ThumbnailError::DimensionsTooLarge {
            width: w,
            height: h,
            limit: limits.max_dimension,
        });
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(ThumbnailError::TooManyPixels {
            width: w,
            height: h,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

fn image_limits(limits: &ThumbnailLimits) -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_alloc);
    l
}

/// Refuses a decode whose output buffer alone would exceed the memory
/// limit (`image::Limits` bounds the decoders' own buffers, not always the
/// output).
fn check_alloc(output_bytes: u64, limits: &ThumbnailLimits) -> Result<(), ThumbnailError> {
    if output_bytes > limits.max_alloc {
        Err(ThumbnailError::MemoryLimit)
    } else {
        Ok(())
    }
}

pub(super) fn map_image_error(e: ImageError) -> ThumbnailError {
    match e {
        ImageError::Limits(_) => ThumbnailError::MemoryLimit,
        ImageError::Unsupported(_) => ThumbnailError::UnsupportedFormat,
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ThumbnailError::Truncated
        }
        other => {
            let text = other.to_string();
            if text.contains("EOF") || text.contains("eof") || text.contains("end of") {
                ThumbnailError::Truncated
            } else {
                ThumbnailError::Malformed(text)
            }
        }
    }
}

type Reader<'a> = ImageReader<Cursor<&'a [u8]>>;

fn reader(input: &[u8]) -> Result<(Reader<'_>, SourceFormat), ThumbnailError> {
    let reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|_| ThumbnailError::UnsupportedFormat)?;
    let format = match reader.format() {
        Some(ImageFormat::Jpeg) => SourceFormat::Jpeg,
        Some(ImageFormat::Png) => SourceFormat::Png,
        Some(ImageFormat::WebP) => SourceFormat::WebP,
        Some(ImageFormat::Gif) => SourceFormat::Gif,
        _ => return Err(ThumbnailError::UnsupportedFormat),
    };
    Ok((reader, format))
}

pub(super) fn probe(input: &[u8], limits: &ThumbnailLimits) -> Result<SourceInfo, ThumbnailError> {
    check_size(input, limits)?;
    let (reader, format) = reader(input)?;
    let (width, height) = if format == SourceFormat::Jpeg {
        let mut d = jpeg_decoder::Decoder::new(Cursor::new(input));
        d.read_info().map_err(map_jpeg_error)?;
        let info = d
            .info()
            .ok_or_else(|| ThumbnailError::Malformed("JPEG without a frame header".into()))?;
        (u32::from(info.width), u32::from(info.height))
    } else {
        // Reads the header only; the limits here are a backstop, the
        // explicit checks below give the typed errors.
        let mut reader = reader;
        reader.no_limits();
        reader.into_dimensions().map_err(map_image_error)?
    };
    check_dimensions(width, height, limits)?;
    Ok(SourceInfo {
        format,
        width,
        height,
    })
}

pub(super) fn decode(
    input: &[u8],
    info: &SourceInfo,
    limits: &ThumbnailLimits,
    want_w: u32,
    want_h: u32,
) -> Result<Decoded, ThumbnailError> {
    match info.format {
        SourceFormat::Jpeg => decode_jpeg(input, info, limits, want_w, want_h),
        _ => decode_generic(input, limits),
    }
}

fn decode_generic(input: &[u8], limits: &ThumbnailLimits) -> Result<Decoded, ThumbnailError> {
    let (mut reader, _) = reader(input)?;
    reader.limits(image_limits(limits));
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h, limits)?;
    check_alloc(decoder.total_bytes(), limits)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // GIF: `from_decoder` reads the first frame only.
    let image = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    Ok(Decoded { image, orientation })
}

fn map_jpeg_error(e: jpeg_decoder::Error) -> ThumbnailError {
    match e {
        jpeg_decoder::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ThumbnailError::Truncated
        }
        jpeg_decoder::Error::Unsupported(f) => {
            ThumbnailError::Malformed(format!("unsupported JPEG feature: {f:?}"))
        }
        other => ThumbnailError::Malformed(other.to_string()),
    }
}

fn decode_jpeg(
    input: &[u8],
    info: &SourceInfo,
    limits: &ThumbnailLimits,
    want_w: u32,
    want_h: u32,
) -> Result<Decoded, ThumbnailError> {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(input));
    d.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    d.read_info().map_err(map_jpeg_error)?;
    let orientation = d
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let (box_w, box_h) = if swaps_axes(orientation) {
        (want_h, want_w)
    } else {
        (want_w, want_h)
    };
    let (tw, th) = fit(info.width, info.height, box_w, box_h);
    // Shrink-on-decode: the smallest DCT scale still >= the target.
    let to_u16 = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (sw, sh) = d.scale(to_u16(tw), to_u16(th)).map_err(map_jpeg_error)?;
    // Output buffer: at most 4 bytes per pixel (CMYK).
    check_alloc(u64::from(sw) * u64::from(sh) * 4, limits)?;
    let pixels = d.decode().map_err(map_jpeg_error)?;
    let out = d
        .info()
        .ok_or_else(|| ThumbnailError::Malformed("JPEG without a frame header".into()))?;
    let (w, h) = (u32::from(out.width), u32::from(out.height));
    let image = jpeg_pixels(pixels, out.pixel_format, w, h)?;
    // The EXIF segment normally precedes the frame; if it did not, it is
    // only known now.
    let orientation = d
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(orientation);
    Ok(Decoded { image, orientation })
}

fn jpeg_pixels(
    pixels: Vec<u8>,
    format: jpeg_decoder::PixelFormat,
    w: u32,
    h: u32,
) -> Result<DynamicImage, ThumbnailError> {
    let short = || ThumbnailError::Truncated;
    Ok(match format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let wide: Vec<u16> = pixels
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, wide).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(short)?)
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            // Plain (non-colour-managed) CMYK to RGB.
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u16::from(p[3]);
                    let ch = |c: u8| ((255 - u16::from(c)) * k / 255) as u8;
                    [ch(p[0]), ch(p[1]), ch(p[2])]
                })
                .collect();
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, rgb).ok_or_else(short)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use image::ImageEncoder;

    use super::*;

    #[test]
    fn jpeg_is_shrunk_while_decoding() {
        let img = image::RgbImage::from_pixel(800, 400, image::Rgb([10, 20, 30]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(img.as_raw(), 800, 400, image::ExtendedColorType::Rgb8)
            .unwrap();
        let limits = ThumbnailLimits::default();
        let info = probe(&jpeg, &limits).unwrap();
        // Target 100 px wide: the DCT scale 1/8 gives exactly 100 x 50.
        let d = decode(&jpeg, &info, &limits, 100, 100).unwrap();
        assert_eq!((d.image.width(), d.image.height()), (100, 50));
        // Target 300 px: 1/2 (400 x 200) is the smallest scale >= 300.
        let d = decode(&jpeg, &info, &limits, 300, 300).unwrap();
        assert_eq!((d.image.width(), d.image.height()), (400, 200));
    }
}
