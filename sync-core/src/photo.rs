//! The photo pipeline: what a phone does to a photo before it is stored or sent, and what the
//! server does to check one.
//!
//! On the phone: decode within limits, apply the EXIF orientation, resize to at most 1600 px on
//! the long edge, re-encode as JPEG (which drops every byte of metadata: location, camera,
//! time), make a thumbnail, and name the result by its SHA-256. The server re-decodes every
//! upload with the same limits and refuses what is not JPEG or PNG or does not hash to its name.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// Longest edge of a stored photo, in pixels.
pub const MAX_EDGE: u32 = 1600;
/// Longest edge of a thumbnail.
pub const THUMB_EDGE: u32 = 240;
/// JPEG quality of stored photos: small on 2G, still legible for a document photo.
pub const QUALITY: u8 = 80;

/// What a photo may cost to decode. Phone cameras stay far inside these; an image bomb does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width or height, in pixels.
    pub max_edge: u32,
    /// Largest decoder allocation, in bytes.
    pub max_alloc: u64,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits {
            max_bytes: 25 * 1024 * 1024,
            max_edge: 12_000,
            max_alloc: 400 * 1024 * 1024,
        }
    }
}

/// Why a photo was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Larger than [`PhotoLimits::max_bytes`].
    #[error("photo is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Neither JPEG nor PNG.
    #[error("not a JPEG or PNG image")]
    UnsupportedFormat,
    /// Its dimensions or decoding cost exceed the limits.
    #[error("image exceeds the decoding limits: {0}")]
    Limits(String),
    /// Corrupt image data.
    #[error("image does not decode: {0}")]
    Corrupt(String),
    /// The bytes do not hash to the name they were sent under.
    #[error("photo does not hash to its name")]
    HashMismatch,
    /// Encoding the result failed.
    #[error("could not encode the photo: {0}")]
    Encode(String),
}

/// A photo ready to store and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The JPEG, at most [`MAX_EDGE`] on its long edge, without metadata.
    pub jpeg: Vec<u8>,
    /// Lowercase hex SHA-256 of `jpeg`: the name records refer to it by.
    pub sha256: String,
    /// Width of `jpeg`.
    pub width: u32,
    /// Height of `jpeg`.
    pub height: u32,
    /// A small JPEG for lists.
    pub thumbnail: Vec<u8>,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode(bytes: &[u8], limits: &PhotoLimits) -> Result<DynamicImage, PhotoError> {
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    if !matches!(reader.format(), Some(ImageFormat::Jpeg | ImageFormat::Png)) {
        return Err(PhotoError::UnsupportedFormat);
    }
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_edge);
    l.max_image_height = Some(limits.max_edge);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let orientation = decoder.orientation().map_err(classify)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn classify(e: image::ImageError) -> PhotoError {
    match e {
        image::ImageError::Limits(l) => PhotoError::Limits(l.to_string()),
        image::ImageError::Unsupported(_) => PhotoError::UnsupportedFormat,
        other => PhotoError::Corrupt(other.to_string()),
    }
}

fn encode(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image.to_rgb8())
        .map_err(|e| PhotoError::Encode(e.to_string()))?;
    Ok(out)
}

/// Prepares a photo from the camera for storage and sync.
pub fn process(bytes: &[u8], limits: &PhotoLimits) -> Result<Processed, PhotoError> {
    let image = decode(bytes, limits)?;
    let edge = image.width().max(image.height());
    let image = if edge >= 2 * MAX_EDGE {
        // From a camera (12 MP and up) the shrink is 2.5x or more: averaging each block of
        // source pixels is as sharp as a filtered resize there, at a fraction of the time.
        image.thumbnail(MAX_EDGE, MAX_EDGE)
    } else if edge > MAX_EDGE {
        image.resize(MAX_EDGE, MAX_EDGE, FilterType::Triangle)
    } else {
        image
    };
    let jpeg = encode(&image, QUALITY)?;
    let thumbnail = encode(&image.thumbnail(THUMB_EDGE, THUMB_EDGE), 70)?;
    Ok(Processed {
        sha256: sha256_hex(&jpeg),
        width: image.width(),
        height: image.height(),
        jpeg,
        thumbnail,
    })
}

/// The server's check of an uploaded photo: it hashes to `name` and decodes, within limits, as
/// JPEG or PNG. Returns its dimensions.
pub fn verify(bytes: &[u8], name: &str, limits: &PhotoLimits) -> Result<(u32, u32), PhotoError> {
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    if sha256_hex(bytes) != name {
        return Err(PhotoError::HashMismatch);
    }
    let image = decode(bytes, limits)?;
    Ok((image.width(), image.height()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    fn camera_jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23;
            image::Rgb([(x % 256) as u8, (y % 256) as u8, (n * 11) as u8])
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .expect("encode");
        out
    }

    /// Inserts an EXIF block with an orientation tag (and a fake GPS-ish marker string).
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(b"SECRET-LOCATION");
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let len = (app1.len() + 2) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&[0, 0, 0], 1, 1, image::ExtendedColorType::Rgb8)
            .expect("png");
        // IHDR data starts at byte 16: width, height; its CRC follows the 13 data bytes.
        out[16..20].copy_from_slice(&w.to_be_bytes());
        out[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_large_photo_is_resized_to_1600_px_and_named_by_its_hash() {
        let p = process(&camera_jpeg(2400, 1800), &PhotoLimits::default()).expect("process");
        assert_eq!((p.width, p.height), (1600, 1200));
        assert_eq!(p.sha256, sha256_hex(&p.jpeg));
        assert!(p.thumbnail.len() < p.jpeg.len());
        assert_eq!(
            verify(&p.jpeg, &p.sha256, &PhotoLimits::default()).ok(),
            Some((1600, 1200))
        );
    }

    #[test]
    fn the_exif_orientation_is_applied_and_all_metadata_is_dropped() {
        let rotated = with_exif_orientation(&camera_jpeg(400, 200), 6);
        assert!(rotated.windows(15).any(|w| w == b"SECRET-LOCATION"));
        let p = process(&rotated, &PhotoLimits::default()).expect("process");
        assert_eq!((p.width, p.height), (200, 400));
        assert!(!p.jpeg.windows(4).any(|w| w == b"Exif"));
        assert!(!p.jpeg.windows(15).any(|w| w == b"SECRET-LOCATION"));
    }

    #[test]
    fn an_image_bomb_is_refused_before_it_is_decoded() {
        let bomb = png_claiming(60_000, 60_000);
        assert!(bomb.len() < 100);
        assert!(matches!(
            process(&bomb, &PhotoLimits::default()),
            Err(PhotoError::Limits(_))
        ));
    }

    #[test]
    fn what_is_not_a_jpeg_or_png_is_refused() {
        assert!(matches!(
            process(b"GIF89a\x01\0\x01\0", &PhotoLimits::default()),
            Err(PhotoError::UnsupportedFormat)
        ));
        assert!(matches!(
            process(b"\xFF\xD8\xFF\xE0 truncated", &PhotoLimits::default()),
            Err(PhotoError::Corrupt(_))
        ));
    }

    #[test]
    fn a_photo_that_does_not_hash_to_its_name_is_refused() {
        let p = process(&camera_jpeg(100, 100), &PhotoLimits::default()).expect("process");
        let wrong = sha256_hex(b"something else");
        assert!(matches!(
            verify(&p.jpeg, &wrong, &PhotoLimits::default()),
            Err(PhotoError::HashMismatch)
        ));
    }

    proptest::proptest! {
        #[test]
        fn mutated_photos_are_refused_or_processed_never_a_panic(flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6)) {
            let mut bytes = camera_jpeg(64, 48);
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x | 1;
            }
            let _ = process(&bytes, &PhotoLimits::default());
        }
    }
}
