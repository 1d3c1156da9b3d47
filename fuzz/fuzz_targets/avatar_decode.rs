//! Avatar data URLs from clients, decoded by `chatroom::avatar::decode`: any string must be
//! answered `Ok` or a typed error without panicking, and an `Ok` must carry bytes that really
//! are the image its extension names, within the size limit.
//!
//! Byte 0 picks a mode. Mode 0: the rest, base64-encoded, becomes the body of a well-formed
//! `data:image/png;base64,` URL, so the fuzzer explores the sniffing of arbitrary bytes
//! instead of spending its time on finding valid base64. Any other mode: the rest is the URL
//! itself (lossily made UTF-8), which explores the parsing.
#![no_main]

use base64::Engine;
use chatroom::avatar::{self, MAX_BYTES};
use libfuzzer_sys::fuzz_target;

/// Whether `bytes` begin with the signature the format's specification defines.
fn has_magic(extension: &str, bytes: &[u8]) -> bool {
    match extension {
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (url, sent) = if mode == 0 {
        let b64 = base64::engine::general_purpose::STANDARD.encode(rest);
        (format!("data:image/png;base64,{b64}"), Some(rest))
    } else {
        (String::from_utf8_lossy(rest).into_owned(), None)
    };
    let Ok(image) = avatar::decode(&url) else {
        return;
    };
    assert!(
        image.bytes.len() <= MAX_BYTES,
        "{} bytes accepted",
        image.bytes.len()
    );
    assert!(
        has_magic(image.extension, &image.bytes),
        "accepted as .{} but starts with {:02x?}",
        image.extension,
        &image.bytes[..image.bytes.len().min(16)]
    );
    if let Some(sent) = sent {
        assert_eq!(image.bytes, sent, "the stored bytes are the bytes sent");
    }
});
