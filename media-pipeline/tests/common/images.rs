//! Test images built in code: JPEG with a hand-made EXIF block (orientation,
//! GPS), PNG with any declared size, GIF with two frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use image::{ImageEncoder, Rgb, RgbImage};

/// A string placed in the GPS IFD (as GPSMapDatum) to find it in bytes.
pub const GPS_MARKER: &[u8] = b"SAMTALE-GPS-59.9139N-10.7522E";

/// A TIFF/EXIF block (big-endian) with an orientation and optionally a
/// GPS IFD (version, latitude ref, latitude, map datum = [`GPS_MARKER`]).
pub fn exif_block(orientation: u16, gps: bool) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08");
    let ifd0_entries: u16 = if gps { 2 } else { 1 };
    let ifd0_len = 2 + 12 * usize::from(ifd0_entries) + 4;
    let gps_ifd_off = (8 + ifd0_len) as u32;
    t.extend_from_slice(&ifd0_entries.to_be_bytes());
    // Orientation: SHORT, 1 value, inline.
    t.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    if gps {
        // GPSInfo IFD pointer: LONG.
        t.extend_from_slice(&[0x88, 0x25, 0x00, 0x04, 0, 0, 0, 1]);
        t.extend_from_slice(&gps_ifd_off.to_be_bytes());
    }
    t.extend_from_slice(&[0, 0, 0, 0]);
    if gps {
        let entries: u16 = 4;
        let data_off = gps_ifd_off + 2 + 12 * u32::from(entries) + 4;
        let lat_off = data_off;
        let datum_off = lat_off + 24;
        t.extend_from_slice(&entries.to_be_bytes());
        t.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0, 0, 0, 4, 2, 3, 0, 0]); // GPSVersionID
        t.extend_from_slice(&[0x00, 0x01, 0x00, 0x02, 0, 0, 0, 2, b'N', 0, 0, 0]); // GPSLatitudeRef
        t.extend_from_slice(&[0x00, 0x02, 0x00, 0x05, 0, 0, 0, 3]); // GPSLatitude
        t.extend_from_slice(&lat_off.to_be_bytes());
        t.extend_from_slice(&[0x00, 0x12, 0x00, 0x02]); // GPSMapDatum, ASCII
        t.extend_from_slice(&(GPS_MARKER.len() as u32 + 1).to_be_bytes());
        t.extend_from_slice(&datum_off.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        for (num, den) in [(59u32, 1u32), (54, 1), (5004, 100)] {
            t.extend_from_slice(&num.to_be_bytes());
            t.extend_from_slice(&den.to_be_bytes());
        }
        t.extend_from_slice(GPS_MARKER);
        t.push(0);
    }
    t
}

/// Encodes `img` as JPEG and inserts an APP1 EXIF segment after SOI.
pub fn jpeg_with_exif(img: &RgbImage, exif: Option<&[u8]>) -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 95)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let Some(exif) = exif else { return plain };
    assert_eq!(&plain[..2], &[0xff, 0xd8]);
    let mut out = vec![0xff, 0xd8, 0xff, 0xe1];
    let len = (2 + 6 + exif.len()) as u16;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(exif);
    out.extend_from_slice(&plain[2..]);
    out
}

pub const RED: [u8; 3] = [255, 0, 0];
pub const GREEN: [u8; 3] = [0, 255, 0];
pub const BLUE: [u8; 3] = [0, 0, 255];
pub const WHITE: [u8; 3] = [255, 255, 255];

/// The image as it should be displayed: `w` × `h`, quadrants red
/// (top-left), green (top-right), blue (bottom-left), white (bottom-right).
pub fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(match (x < w / 2, y < h / 2) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        })
    })
}

/// How a camera would store `displayed` for EXIF orientation `o`, written
/// from the EXIF definitions (independently of the code under test).
pub fn stored_for(displayed: &RgbImage, o: u16) -> RgbImage {
    let (w, h) = displayed.dimensions();
    let d = |x: u32, y: u32| *displayed.get_pixel(x, y);
    match o {
        1 => displayed.clone(),
        2 => RgbImage::from_fn(w, h, |x, y| d(w - 1 - x, y)),
        3 => RgbImage::from_fn(w, h, |x, y| d(w - 1 - x, h - 1 - y)),
        4 => RgbImage::from_fn(w, h, |x, y| d(x, h - 1 - y)),
        // Stored is h × w for 5..=8.
        5 => RgbImage::from_fn(h, w, |x, y| d(y, x)),
        6 => RgbImage::from_fn(h, w, |x, y| d(w - 1 - y, x)),
        7 => RgbImage::from_fn(h, w, |x, y| d(w - 1 - y, h - 1 - x)),
        8 => RgbImage::from_fn(h, w, |x, y| d(y, h - 1 - x)),
        _ => panic!("orientation {o}"),
    }
}

/// Whether two colours are within `tol` on every channel.
pub fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A tiny PNG whose header declares `w` × `h` RGB pixels (a decompression
/// bomb when large): IHDR, a small IDAT, IEND.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a few zero bytes (stored block).
    png_chunk(
        &mut out,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0x00, 0x04, 0x00, 0x01,
        ],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Noise, so JPEGs are not trivially small.
pub fn noise(w: u32, h: u32) -> RgbImage {
    let mut s = 0x1234_5678u32;
    RgbImage::from_fn(w, h, |_, _| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let [a, b, c, _] = s.to_le_bytes();
        Rgb([a, b, c])
    })
}
