//! The photo bar: a 12-megapixel camera JPEG to a 1600 px JPEG, on one core.

use anyhow::Result;
use homevisit_sync_core::photo::{PhotoLimits, process};
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::report::{Report, kb, median, ms};

/// A 4000x3000 photo with the texture of a real scene (smooth areas, edges, noise), encoded
/// at quality 92 as phone cameras do.
pub fn camera_photo() -> Result<Vec<u8>> {
    let mut state: u32 = 0x9E37_79B9;
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 24) as i32 - 12;
        let sky = y < 1100;
        let base: [i32; 3] = if sky {
            [120 + (y / 20) as i32, 160 + (y / 25) as i32, 220]
        } else if (x / 250 + y / 250) % 2 == 0 {
            [150, 110, 80]
        } else {
            [90 + (x % 97) as i32, 120, 60 + (y % 53) as i32]
        };
        image::Rgb(base.map(|c| (c + noise).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 92).encode_image(&img)?;
    Ok(out)
}

pub fn photo(report: &mut Report) -> Result<()> {
    let input = camera_photo()?;
    let limits = PhotoLimits::default();
    let processed = process(&input, &limits)?;
    let time = median(7, || process(&input, &limits).map(|p| p.jpeg.len()));
    report.row(
        "12-megapixel JPEG to a 1600 px JPEG: size",
        format!(
            "{} (from {}), {}x{}",
            kb(processed.jpeg.len()),
            kb(input.len()),
            processed.width,
            processed.height
        ),
        "under 300 KB",
        Some(processed.jpeg.len() < 300_000),
    );
    report.row(
        "12-megapixel JPEG to a 1600 px JPEG: time on one core (decode, orient, resize, encode, thumbnail, hash)",
        ms(time),
        "under 400 ms",
        Some(time.as_secs_f64() < 0.4),
    );
    Ok(())
}
