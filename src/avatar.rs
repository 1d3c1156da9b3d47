//! Uploaded images: a data URL decoded, its type decided by its own bytes, stored under a
//! name the server picks.

use base64::Engine;
use std::path::Path;

/// Largest decoded image.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Why an avatar was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not a `data:image/<type>;base64,` URL with a plain media subtype.
    #[error("avatarImage must be empty or a data URL like data:image/png;base64,...")]
    NotDataUrl,
    /// The base64 part does not decode.
    #[error("avatarImage is not valid base64")]
    BadBase64,
    /// Larger than [`MAX_BYTES`].
    #[error("avatarImage may be at most 1 MiB")]
    TooLarge,
    /// The bytes are not PNG, JPEG, GIF or WebP.
    #[error("avatarImage must be a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
}

/// A decoded image and the extension its bytes call for.
#[derive(Debug, PartialEq, Eq)]
pub struct Image {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// `png`, `jpg`, `gif` or `webp`.
    pub extension: &'static str,
}

/// Decodes a data URL into an image, deciding its type from the bytes.
///
/// # Errors
/// [`Error`] for anything but a PNG, JPEG, GIF or WebP of at most [`MAX_BYTES`].
pub fn decode(data_url: &str) -> Result<Image, Error> {
    let rest = data_url
        .strip_prefix("data:image/")
        .ok_or(Error::NotDataUrl)?;
    let (subtype, b64) = rest.split_once(";base64,").ok_or(Error::NotDataUrl)?;
    if !is_subtype(subtype) {
        return Err(Error::NotDataUrl);
    }
    // Checked before decoding so a huge string costs nothing: 4 base64 chars per 3 bytes.
    if b64.len() / 4 * 3 > MAX_BYTES + 3 {
        return Err(Error::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_end())
        .map_err(|_| Error::BadBase64)?;
    if bytes.len() > MAX_BYTES {
        return Err(Error::TooLarge);
    }
    let extension = sniff(&bytes).ok_or(Error::NotAnImage)?;
    Ok(Image { bytes, extension })
}

/// Whether `text` is a media subtype as RFC 6838 names them (`restricted-name`: a letter or
/// digit, then up to 126 of letters, digits and `!#$&-^_.+`). The bytes decide the stored
/// type, but a URL that is not of the contract's form is refused, not reinterpreted: a path
/// (`../x`), parameters (`png;charset=x`) or spaces have no place there.
fn is_subtype(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.len() <= 127
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// The extension of an accepted image, decided by the whole signature its format's
/// specification puts first. (A looser check, such as `GIF` alone or `WEBP` at offset 8 with
/// anything before it, lets markup through under an image's name; the fuzzer found that.)
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// Stores an image in `media_dir` under a fresh random name; returns its `/media/...` path.
///
/// # Errors
/// I/O errors.
pub fn store(media_dir: &Path, image: &Image) -> std::io::Result<String> {
    let name = format!("{}.{}", uuid::Uuid::new_v4().simple(), image.extension);
    let tmp = media_dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &image.bytes)?;
    std::fs::rename(&tmp, media_dir.join(&name))?;
    Ok(format!("/media/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn the_bytes_decide_the_type_not_the_url() {
        let png = decode(&format!("data:image/gif;base64,{PNG_1X1}")).unwrap();
        assert_eq!(png.extension, "png");
        let text = base64::engine::general_purpose::STANDARD.encode("<svg onload=alert(1)>");
        assert_eq!(
            decode(&format!("data:image/png;base64,{text}")),
            Err(Error::NotAnImage)
        );
        assert_eq!(decode("http://x/y.png"), Err(Error::NotDataUrl));
        // Markup behind a partial signature is not an image.
        for fake in [
            &b"GIF<html><script>alert(1)</script>"[..],
            b"<!--xxxxWEBP--><svg onload=alert(1)>",
            b"\x89PNG<svg/>",
        ] {
            let url = format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(fake)
            );
            assert_eq!(decode(&url), Err(Error::NotAnImage), "{fake:?}");
        }
        assert_eq!(decode("data:image/png;base64,@@@"), Err(Error::BadBase64));
        for subtype in [
            "jpeg",
            "webp",
            "GIF",
            "svg+xml",
            "vnd.microsoft.icon",
            "x-icon",
        ] {
            let url = format!("data:image/{subtype};base64,{PNG_1X1}");
            assert_eq!(decode(&url).map(|i| i.extension), Ok("png"), "{subtype}");
        }
        let long = "a".repeat(128);
        for subtype in [
            "../../x",
            "png/../x",
            "",
            ".",
            "..",
            "-png",
            "png;charset=utf-8",
            "png ",
            " png",
            "p\\ng",
            "p%2fng",
            "pn\tg",
            "ÿpng",
            &long,
        ] {
            let url = format!("data:image/{subtype};base64,{PNG_1X1}");
            assert_eq!(decode(&url), Err(Error::NotDataUrl), "{subtype:?}");
        }
        let big = "A".repeat(2 * MAX_BYTES);
        assert_eq!(
            decode(&format!("data:image/png;base64,{big}")),
            Err(Error::TooLarge)
        );
    }
}
