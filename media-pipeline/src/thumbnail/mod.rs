//! Thumbnails of JPEG, PNG, WebP and GIF (first frame), safe against hostile
//! input.
//!
//! Steps: the input size is checked, then the header alone is read and the
//! dimensions and pixel count are checked against [`ThumbnailLimits`]
//! *before* anything is decoded (a 100 000 × 100 000 PNG of a few hundred
//! bytes is refused in microseconds); decoding then runs under
//! `image::Limits` (a memory ceiling) as a second fence.
//!
//! * JPEG uses `jpeg-decoder` with shrink-on-decode (DCT scaling by 1/2, 1/4
//!   or 1/8 to the smallest size still at least the target), then
//!   `fast_image_resize` (SIMD, Lanczos3) to the exact size.
//! * PNG, WebP, GIF decode through `image` at full size, then resize.
//! * The EXIF orientation (all 8 values) is applied to the output.
//! * Outputs are re-encoded from pixels (JPEG at a given quality, or
//!   lossless WebP, the only WebP encoder `image` has): no EXIF, XMP, ICC or
//!   other metadata, so GPS positions cannot leak.
//!
//! This is the same code whether the server thumbnails public media or a
//! client thumbnails a photo before encrypting it.

mod decode;
mod encode;

use image::DynamicImage;

pub use decode::SourceFormat;

/// Limits against decompression bombs. Defaults: 50 MiB of input, 100
/// megapixels, 20 000 px per side, 1 GiB of decoder allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailLimits {
    /// Largest input file, in bytes.
    pub max_input_bytes: usize,
    /// Most pixels (width × height) an input may declare.
    pub max_pixels: u64,
    /// Longest side an input may declare.
    pub max_dimension: u32,
    /// Most bytes the decoder may allocate.
    pub max_alloc: u64,
}

impl Default for ThumbnailLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
            max_alloc: 1024 * 1024 * 1024,
        }
    }
}

/// The encoding of a thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// Baseline JPEG at this quality (1..=100); transparency is flattened
    /// onto white.
    Jpeg {
        /// Quality, 1..=100.
        quality: u8,
    },
    /// Lossless WebP.
    WebP,
}

impl OutputFormat {
    /// The MIME type of this format.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg { .. } => "image/jpeg",
            Self::WebP => "image/webp",
        }
    }
}

/// One wanted output: fit inside `max_width` × `max_height` keeping the
/// aspect ratio; never enlarged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSpec {
    /// Largest output width.
    pub max_width: u32,
    /// Largest output height.
    pub max_height: u32,
    /// Output encoding.
    pub format: OutputFormat,
}

/// A finished thumbnail.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoding.
    pub format: OutputFormat,
    /// The encoded bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Why no thumbnail was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThumbnailError {
    /// The input file is larger than allowed.
    #[error("input of {size} bytes exceeds the limit of {limit}")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JPEG, PNG, WebP or GIF.
    #[error("unsupported or unrecognised image format")]
    UnsupportedFormat,
    /// A side is longer than allowed (from the header).
    #[error("image of {width}x{height} exceeds the {limit} px side limit")]
    DimensionsTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit.
        limit: u32,
    },
    /// More pixels than allowed (from the header).
    #[error("image of {width}x{height} exceeds the {limit} pixel limit")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit.
        limit: u64,
    },
    /// Decoding would allocate more than allowed.
    #[error("decoding would exceed the memory limit")]
    MemoryLimit,
    /// The file ends before the image data does.
    #[error("image data is truncated")]
    Truncated,
    /// The file is damaged or not what its header says.
    #[error("malformed image: {0}")]
    Malformed(String),
    /// A spec with a zero size or a JPEG quality outside 1..=100.
    #[error("invalid thumbnail spec")]
    InvalidSpec,
    /// The encoder failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// What the header says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    /// The container format.
    pub format: SourceFormat,
    /// Width as stored.
    pub width: u32,
    /// Height as stored.
    pub height: u32,
}

/// Reads only the header: format and dimensions, checked against `limits`.
pub fn probe(input: &[u8], limits: &ThumbnailLimits) -> Result<SourceInfo, ThumbnailError> {
    decode::probe(input, limits)
}

/// Makes one thumbnail per spec from `input`, decoding it once.
pub fn thumbnails(
    input: &[u8],
    specs: &[ThumbnailSpec],
    limits: &ThumbnailLimits,
) -> Result<Vec<Thumbnail>, ThumbnailError> {
    for spec in specs {
        let quality_ok = match spec.format {
            OutputFormat::Jpeg { quality } => (1..=100).contains(&quality),
            OutputFormat::WebP => true,
        };
        if spec.max_width == 0 || spec.max_height == 0 || !quality_ok {
            return Err(ThumbnailError::InvalidSpec);
        }
    }
    let info = decode::probe(input, limits)?;
    // Decode once, large enough for the biggest wanted output.
    let want_w = specs.iter().map(|s| s.max_width).max().unwrap_or(1);
    let want_h = specs.iter().map(|s| s.max_height).max().unwrap_or(1);
    let decoded = decode::decode(input, &info, limits, want_w, want_h)?;
    specs
        .iter()
        .map(|spec| make_one(&decoded.image, decoded.orientation, spec))
        .collect()
}

fn make_one(
    stored: &DynamicImage,
    orientation: image::metadata::Orientation,
    spec: &ThumbnailSpec,
) -> Result<Thumbnail, ThumbnailError> {
    let swaps = decode::swaps_axes(orientation);
    // Fit in stored space, then orient the small image (cheaper).
    let (box_w, box_h) = if swaps {
        (spec.max_height, spec.max_width)
    } else {
        (spec.max_width, spec.max_height)
    };
    let (w, h) = fit(stored.width(), stored.height(), box_w, box_h);
    let mut small = encode::resize(stored, w, h)?;
    small.apply_orientation(orientation);
    let bytes = encode::encode(&small, spec.format)?;
    Ok(Thumbnail {
        width: small.width(),
        height: small.height(),
        format: spec.format,
        bytes,
    })
}

/// The largest size inside `box_w` × `box_h` with the aspect ratio of
/// `w` × `h`, never larger than `w` × `h`, at least 1 × 1.
pub(crate) fn fit(w: u32, h: u32, box_w: u32, box_h: u32) -> (u32, u32) {
    if w <= box_w && h <= box_h {
        return (w.max(1), h.max(1));
    }
    let (w64, h64) = (u64::from(w.max(1)), u64::from(h.max(1)));
    let (bw, bh) = (u64::from(box_w), u64::from(box_h));
    // Compare w/bw against h/bh without floats.
    let (nw, nh) = if w64 * bh >= h64 * bw {
        (bw, (h64 * bw + w64 / 2) / w64)
    } else {
        ((w64 * bh + h64 / 2) / h64, bh)
    };
    (
        u32::try_from(nw).unwrap_or(box_w).max(1),
        u32::try_from(nh).unwrap_or(box_h).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(4000, 3000, 320, 320), (320, 240));
        assert_eq!(fit(3000, 4000, 320, 320), (240, 320));
        assert_eq!(fit(100, 50, 320, 320), (100, 50));
        assert_eq!(fit(10000, 1, 100, 100), (100, 1));
    }
}
