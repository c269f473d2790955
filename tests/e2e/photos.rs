//! Photos: resumable, idempotent upload; verification; visible exactly where the file is.

use homevisit_sync_core::file::{Findings, RecordVersion};
use homevisit_sync_core::photo::{self, PhotoLimits, sha256_hex};
use homevisit_sync_core::vocab::RecordKind;
use image::{ImageEncoder, RgbImage};

use crate::harness::{Phone, Server, now};

fn camera_photo() -> Vec<u8> {
    let img = RgbImage::from_fn(2000, 1500, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 239) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
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

/// A tiny PNG whose header claims 60000 x 60000 pixels: 14 GB to decode.
fn png_bomb() -> Vec<u8> {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .expect("png");
    // IHDR data sits at bytes 16..29 (after the signature, length and type).
    png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn a_photo_uploads_in_pieces_and_is_seen_only_by_those_who_see_its_file() {
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let child = director.register("李小红", "220303100200");
    let processed = photo::process(&camera_photo(), &PhotoLimits::default()).expect("process");
    let sha = processed.sha256.clone();
    let jpeg = processed.jpeg.clone();
    let token = crate::harness::token(&director.client);
    let path = format!("/api/v1/blobs/{sha}");
    let half = jpeg.len() / 2;
    let total = jpeg.len();
    // Sends bytes start..end of the photo as one piece.
    let piece = |start: usize, end: usize| {
        director
            .client
            .call_with(
                "PUT",
                &path,
                Some(&token),
                "image/jpeg",
                &jpeg[start..end],
                &[(
                    "Content-Range",
                    &format!("bytes {start}-{}/{total}", end - 1),
                )],
            )
            .expect("an answer")
    };
    let first = piece(0, half);
    assert_eq!(first.status, 202, "{:?}", first.json());
    assert_eq!(first.json()["offset"], half);
    // A piece that skips ahead is refused with the offset to resume from.
    let skipped = piece(half + 1, total);
    assert_eq!(skipped.status, 409);
    assert_eq!(skipped.json()["offset"], half);
    let status = director
        .client
        .get(&format!("{path}/status"))
        .expect("status");
    assert_eq!(status["offset"], half);
    let rest = piece(half, total);
    assert_eq!(rest.status, 201, "{:?}", rest.json());
    let again = director
        .client
        .call("PUT", &path, Some(&token), "image/jpeg", &jpeg)
        .expect("again");
    assert_eq!(again.status, 200, "a repeated upload is a no-op");

    // Not yet referenced by any file: nobody sees it.
    let supervisor = server.login("sup_a");
    let (sup_token, sup_b) = (crate::harness::token(&supervisor), server.login("sup_b"));
    assert_eq!(
        supervisor
            .call("GET", &path, Some(&sup_token), "", &[])
            .expect("get")
            .status,
        404
    );

    let mut visit = RecordVersion::home_visit(
        now().date_naive(),
        "dir_a",
        now(),
        Findings {
            living_security: "正常".into(),
            family_guardianship: "祖母照料".into(),
            medical_schooling: "上学".into(),
            care_activities: "无".into(),
        },
    );
    visit.photos.push(sha.clone());
    director
        .device
        .edit(&child, |f| {
            f.add_record(RecordKind::HomeVisit, &visit, "dir_a", now())
        })
        .expect("record");
    director.sync();
    let got = supervisor
        .call("GET", &path, Some(&sup_token), "", &[])
        .expect("get");
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!(sha256_hex(&got.body), sha);
    let b_token = crate::harness::token(&sup_b);
    let denied = sup_b
        .call("GET", &path, Some(&b_token), "", &[])
        .expect("get");
    assert_eq!(denied.status, 403);
    assert_eq!(denied.code().as_deref(), Some("region_forbidden"));
}

#[test]
fn image_bombs_wrong_hashes_and_non_images_are_refused_and_not_stored() {
    let server = Server::sqlite();
    let director = server.login("dir_a");
    let token = crate::harness::token(&director);
    let upload = |name: &str, body: &[u8]| {
        director
            .call(
                "PUT",
                &format!("/api/v1/blobs/{name}"),
                Some(&token),
                "image/png",
                body,
            )
            .expect("answer")
    };
    let bomb = png_bomb();
    let reply = upload(&sha256_hex(&bomb), &bomb);
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_photo"))
    );
    let text = b"not an image at all".to_vec();
    let reply = upload(&sha256_hex(&text), &text);
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_photo"))
    );
    let photo = photo::process(&camera_photo(), &PhotoLimits::default()).expect("process");
    let reply = upload(&sha256_hex(b"something else"), &photo.jpeg);
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (400, Some("invalid_photo"))
    );
    let reply = upload("../../etc/passwd", &photo.jpeg);
    assert!(
        reply.status == 400 || reply.status == 404,
        "{}",
        reply.status
    );
    let big = vec![0u8; 9 << 20];
    let reply = upload(&sha256_hex(&big), &big);
    assert_eq!(reply.status, 413);
    let status = director
        .get(&format!("/api/v1/blobs/{}/status", sha256_hex(&bomb)))
        .expect("status");
    assert_eq!(
        (status["stored"].as_bool(), status["offset"].as_u64()),
        (Some(false), Some(0))
    );
    assert_eq!(
        director
            .call("GET", "/healthz", None, "", &[])
            .expect("up")
            .status,
        200
    );
}
