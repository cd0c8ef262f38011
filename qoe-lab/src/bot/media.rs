//! Pre-encoded media for bots: VP8 frames from IVF files and Opus packets
//! from Ogg files, plus writers for the raw inputs Debian's `vpxenc` and
//! `opusenc` encode from. Readers never panic on malformed files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file that is not what it claims to be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The IVF container is malformed.
    #[error("invalid IVF: {0}")]
    Ivf(&'static str),
    /// The Ogg container is malformed.
    #[error("invalid Ogg: {0}")]
    Ogg(&'static str),
    /// An encoder is missing or failed.
    #[error("encoder {tool} failed: {detail}")]
    Encoder {
        /// The program.
        tool: &'static str,
        /// Its complaint.
        detail: String,
    },
}

/// One encoded video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// VP8 bitstream of one frame.
    pub data: Vec<u8>,
    /// VP8 keyframe (frame tag P bit clear).
    pub keyframe: bool,
}

/// Parses an IVF file (32-byte header, then 12-byte frame headers).
/// Returns the frames and the frame rate.
pub fn parse_ivf(bytes: &[u8]) -> Result<(Vec<VideoFrame>, u32), MediaError> {
    let header = bytes.get(..32).ok_or(MediaError::Ivf("short header"))?;
    if &header[..4] != b"DKIF" {
        return Err(MediaError::Ivf("missing DKIF signature"));
    }
    if &header[8..12] != b"VP80" {
        return Err(MediaError::Ivf("not VP8"));
    }
    let header_len = usize::from(u16::from_le_bytes([header[6], header[7]]));
    let rate = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    let scale = u32::from_le_bytes([header[20], header[21], header[22], header[23]]).max(1);
    let fps = (rate / scale).clamp(1, 120);
    let mut pos = header_len.max(32);
    let mut frames = Vec::new();
    while pos < bytes.len() {
        let fh = bytes
            .get(pos..pos + 12)
            .ok_or(MediaError::Ivf("truncated frame header"))?;
        let len = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        let data = bytes
            .get(pos + 12..pos + 12 + len)
            .ok_or(MediaError::Ivf("truncated frame"))?;
        if data.is_empty() {
            return Err(MediaError::Ivf("empty frame"));
        }
        frames.push(VideoFrame {
            keyframe: data[0] & 0x01 == 0,
            data: data.to_vec(),
        });
        pos += 12 + len;
    }
    if frames.is_empty() {
        return Err(MediaError::Ivf("no frames"));
    }
    Ok((frames, fps))
}

/// Extracts the Opus packets of an Ogg Opus file (RFC 7845), skipping the
/// OpusHead and OpusTags headers.
pub fn parse_ogg_opus(bytes: &[u8]) -> Result<Vec<Vec<u8>>, MediaError> {
    let mut packets = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let page = bytes
            .get(pos..pos + 27)
            .ok_or(MediaError::Ogg("truncated page header"))?;
        if &page[..4] != b"OggS" {
            return Err(MediaError::Ogg("missing OggS capture pattern"));
        }
        let segments = usize::from(page[26]);
        let table = bytes
            .get(pos + 27..pos + 27 + segments)
            .ok_or(MediaError::Ogg("truncated segment table"))?;
        let mut body = pos + 27 + segments;
        for &lacing in table {
            let seg = bytes
                .get(body..body + usize::from(lacing))
                .ok_or(MediaError::Ogg("truncated segment"))?;
            partial.extend_from_slice(seg);
            body += usize::from(lacing);
            if lacing < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        pos = body;
    }
    let audio: Vec<Vec<u8>> = packets
        .into_iter()
        .filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags") && !p.is_empty())
        .collect();
    if audio.is_empty() {
        return Err(MediaError::Ogg("no Opus packets"));
    }
    Ok(audio)
}

/// Writes `frames` of 4:2:0 video: a solid colour (Y, U, V) with a white
/// square moving across, so every frame differs.
pub fn write_y4m(
    path: &Path,
    width: usize,
    height: usize,
    frames: usize,
    yuv: (u8, u8, u8),
) -> Result<(), MediaError> {
    let mut out = format!("YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    for f in 0..frames {
        out.extend_from_slice(b"FRAME\n");
        let sq = height / 4;
        let x0 = (f * 4) % width.saturating_sub(sq).max(1);
        for y in 0..height {
            for x in 0..width {
                let inside = y < sq && x >= x0 && x < x0 + sq;
                out.push(if inside { 235 } else { yuv.0 });
            }
        }
        out.extend(std::iter::repeat_n(yuv.1, cw * ch));
        out.extend(std::iter::repeat_n(yuv.2, cw * ch));
    }
    std::fs::write(path, out).map_err(|source| MediaError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes a 48 kHz mono 16-bit WAV of a tone warbling around `freq` Hz.
pub fn write_tone_wav(path: &Path, seconds: f64, freq: f64) -> Result<(), MediaError> {
    let n = (48_000.0 * seconds) as usize;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / 48_000.0;
        let f = freq * (1.0 + 0.1 * (2.0 * std::f64::consts::PI * 2.0 * t).sin());
        let s = (0.3 * (2.0 * std::f64::consts::PI * f * t).sin() * 32767.0) as i16;
        data.extend_from_slice(&s.to_le_bytes());
    }
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&48_000u32.to_le_bytes());
    out.extend_from_slice(&96_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    std::fs::write(path, out).map_err(|source| MediaError::Io {
        path: path.to_owned(),
        source,
    })
}

fn run(tool: &'static str, args: &[&str]) -> Result<(), MediaError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| MediaError::Encoder {
            tool,
            detail: format!("{e} (apt-get install vpx-tools opus-tools)"),
        })?;
    if !out.status.success() {
        return Err(MediaError::Encoder {
            tool,
            detail: String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(500)
                .collect(),
        });
    }
    Ok(())
}

/// Encoded media a bot sends in a loop.
#[derive(Debug, Clone)]
pub struct MediaClip {
    /// VP8 frames; the first is a keyframe.
    pub video: Vec<VideoFrame>,
    /// Video frame rate.
    pub fps: u32,
    /// 20 ms Opus packets.
    pub audio: Vec<Vec<u8>>,
}

impl MediaClip {
    /// Encodes a clip with `vpxenc` (VP8, 320×240, keyframe every 2 s) and
    /// `opusenc` (32 kbit/s), caching it in `dir` by `name`.
    pub fn encode(
        dir: &Path,
        name: &str,
        yuv: (u8, u8, u8),
        seconds: usize,
    ) -> Result<MediaClip, MediaError> {
        std::fs::create_dir_all(dir).map_err(|source| MediaError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let ivf = dir.join(format!("{name}.ivf"));
        let ogg = dir.join(format!("{name}.opus"));
        if !ivf.exists() {
            let y4m = dir.join(format!("{name}.y4m"));
            write_y4m(&y4m, 320, 240, seconds * 30, yuv)?;
            let out = ivf.with_extension("ivf.tmp");
            run(
                "vpxenc",
                &[
                    "--codec=vp8",
                    "--ivf",
                    "--quiet",
                    "--good",
                    "--cpu-used=8",
                    "--target-bitrate=300",
                    "--kf-max-dist=60",
                    "--lag-in-frames=0",
                    "--error-resilient=1",
                    "-o",
                    path_str(&out)?,
                    path_str(&y4m)?,
                ],
            )?;
            std::fs::rename(&out, &ivf).map_err(|source| MediaError::Io {
                path: ivf.clone(),
                source,
            })?;
            let _ = std::fs::remove_file(&y4m);
        }
        if !ogg.exists() {
            let wav = dir.join(format!("{name}.wav"));
            write_tone_wav(&wav, seconds as f64, 330.0 + f64::from(yuv.0))?;
            let out = ogg.with_extension("opus.tmp");
            run(
                "opusenc",
                &[
                    "--quiet",
                    "--bitrate",
                    "32",
                    "--framesize",
                    "20",
                    path_str(&wav)?,
                    path_str(&out)?,
                ],
            )?;
            std::fs::rename(&out, &ogg).map_err(|source| MediaError::Io {
                path: ogg.clone(),
                source,
            })?;
            let _ = std::fs::remove_file(&wav);
        }
        Self::load(&ivf, &ogg)
    }

    /// Loads an IVF + Ogg Opus pair.
    pub fn load(ivf: &Path, ogg: &Path) -> Result<MediaClip, MediaError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| MediaError::Io {
                path: p.to_owned(),
                source,
            })
        };
        let (video, fps) = parse_ivf(&read(ivf)?)?;
        let audio = parse_ogg_opus(&read(ogg)?)?;
        Ok(MediaClip { video, fps, audio })
    }
}

fn path_str(p: &Path) -> Result<&str, MediaError> {
    p.to_str().ok_or(MediaError::Encoder {
        tool: "path",
        detail: "non-UTF-8 path".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivf_parsing_and_garbage() {
        let mut ivf = b"DKIF\0\0\x20\0VP80".to_vec();
        ivf.resize(32, 0);
        ivf[16] = 30;
        ivf[20] = 1;
        ivf.extend_from_slice(&3u32.to_le_bytes());
        ivf.extend_from_slice(&[0; 8]);
        ivf.extend_from_slice(&[0x10, 1, 2]);
        let (frames, fps) = parse_ivf(&ivf).unwrap();
        assert_eq!((frames.len(), fps, frames[0].keyframe), (1, 30, true));
        assert!(parse_ivf(&ivf[..40]).is_err());
        assert!(parse_ivf(b"RIFF").is_err());
        for n in 0..ivf.len() {
            let _ = parse_ivf(&ivf[..n]);
        }
    }

    #[test]
    fn ogg_garbage_is_an_error() {
        assert!(parse_ogg_opus(b"").is_err());
        assert!(parse_ogg_opus(b"OggS\0\0").is_err());
        assert!(parse_ogg_opus(&[0u8; 64]).is_err());
    }
}
