//! Decompression of request bodies with a hard bound on the output, so that a small
//! compressed body cannot inflate into an unbounded allocation.

use std::io::Read;

use bytes::Bytes;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("unsupported Content-Encoding \"{0}\" (supported: gzip, zstd, deflate, zlib, snappy, x-snappy-framed)")]
    Unsupported(String),
    #[error("decompressed body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("invalid {encoding} data: {message}")]
    Invalid { encoding: String, message: String },
}

/// Reads at most `limit` bytes of decompressed output; one byte more means the body is too large.
fn bounded(reader: impl Read, limit: usize, encoding: &str) -> Result<Bytes, DecompressError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Invalid {
            encoding: encoding.to_string(),
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

/// Decompresses `body` according to an HTTP `Content-Encoding` value; identity passes through.
pub fn decompress(encoding: &str, body: Bytes, limit: usize) -> Result<Bytes, DecompressError> {
    let encoding = encoding.trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => {
            if body.len() > limit {
                Err(DecompressError::TooLarge(limit))
            } else {
                Ok(body)
            }
        }
        "gzip" | "x-gzip" => bounded(flate2::read::MultiGzDecoder::new(&body[..]), limit, "gzip"),
        // Go's net/http "deflate" is zlib-wrapped, as the Collector reads it.
        "deflate" | "zlib" => bounded(flate2::read::ZlibDecoder::new(&body[..]), limit, &encoding),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(|e| {
                DecompressError::Invalid {
                    encoding: encoding.clone(),
                    message: e.to_string(),
                }
            })?;
            bounded(decoder, limit, "zstd")
        }
        "snappy" => {
            let len = snap::raw::decompress_len(&body).map_err(|e| DecompressError::Invalid {
                encoding: encoding.clone(),
                message: e.to_string(),
            })?;
            if len > limit {
                return Err(DecompressError::TooLarge(limit));
            }
            snap::raw::Decoder::new()
                .decompress_vec(&body)
                .map(Bytes::from)
                .map_err(|e| DecompressError::Invalid {
                    encoding: encoding.clone(),
                    message: e.to_string(),
                })
        }
        "x-snappy-framed" => bounded(
            snap::read::FrameDecoder::new(&body[..]),
            limit,
            "x-snappy-framed",
        ),
        _ => Err(DecompressError::Unsupported(encoding)),
    }
}

/// Compresses a request body for an HTTP `Content-Encoding` (gzip, zstd, snappy block,
/// zlib/deflate); `None` returns the body as it is.
pub fn compress(encoding: Option<&str>, body: &[u8]) -> std::io::Result<Vec<u8>> {
    compress_parts(encoding, &[body])
}

/// [`compress`] for a body held in parts (an encoded batch's entries), without first
/// copying them together where the encoder can take them one by one.
pub fn compress_parts<P: AsRef<[u8]>>(
    encoding: Option<&str>,
    parts: &[P],
) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    fn write_all<W: Write, P: AsRef<[u8]>>(mut w: W, parts: &[P]) -> std::io::Result<W> {
        for part in parts {
            w.write_all(part.as_ref())?;
        }
        Ok(w)
    }
    let len: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    match encoding {
        None | Some("") | Some("identity") => Ok(concat(parts, len)),
        Some("gzip") => write_all(
            flate2::write::GzEncoder::new(
                Vec::with_capacity(len / 4),
                flate2::Compression::default(),
            ),
            parts,
        )?
        .finish(),
        Some("zlib") | Some("deflate") => write_all(
            flate2::write::ZlibEncoder::new(
                Vec::with_capacity(len / 4),
                flate2::Compression::default(),
            ),
            parts,
        )?
        .finish(),
        Some("zstd") => write_all(
            zstd::stream::write::Encoder::new(Vec::with_capacity(len / 4), 3)?,
            parts,
        )?
        .finish(),
        Some("snappy") => snap::raw::Encoder::new()
            .compress_vec(&concat(parts, len))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Some(other) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("unsupported compression \"{other}\""),
        )),
    }
}

/// The parts one after the other, in one buffer.
fn concat<P: AsRef<[u8]>>(parts: &[P], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for part in parts {
        out.extend_from_slice(part.as_ref());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_every_encoding() {
        let data = b"hello hello hello hello".repeat(10);
        assert_eq!(decompress("gzip", gzip(&data).into(), 1000).unwrap(), data);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(decompress("deflate", z.clone().into(), 1000).unwrap(), data);
        assert_eq!(decompress("zlib", z.into(), 1000).unwrap(), data);
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(decompress("zstd", zs.into(), 1000).unwrap(), data);
        let sn = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress("snappy", sn.into(), 1000).unwrap(), data);
        let mut fw = snap::write::FrameEncoder::new(Vec::new());
        fw.write_all(&data).unwrap();
        let framed = fw.into_inner().unwrap();
        assert_eq!(
            decompress("x-snappy-framed", framed.into(), 1000).unwrap(),
            data
        );
        assert_eq!(
            decompress("", Bytes::from_static(b"abc"), 10).unwrap(),
            &b"abc"[..]
        );
    }

    #[test]
    fn compress_then_decompress() {
        let data = b"ferrotel ".repeat(100);
        for enc in ["gzip", "zlib", "deflate", "zstd", "snappy"] {
            let packed = compress(Some(enc), &data).unwrap();
            assert!(packed.len() < data.len(), "{enc}");
            assert_eq!(
                decompress(enc, packed.into(), 10_000).unwrap(),
                data,
                "{enc}"
            );
        }
        assert_eq!(compress(None, b"x").unwrap(), b"x");
    }

    #[test]
    fn parts_compress_as_their_concatenation() {
        let data = b"ferrotel ".repeat(100);
        let parts = [&data[..7], &data[7..500], &data[500..]];
        for enc in ["gzip", "zlib", "deflate", "zstd", "snappy"] {
            let packed = compress_parts(Some(enc), &parts).unwrap();
            assert_eq!(
                decompress(enc, packed.into(), 10_000).unwrap(),
                data,
                "{enc}"
            );
        }
        assert_eq!(compress_parts(None, &parts).unwrap(), data);
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 50 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 100 << 10, "a small body");
        assert_eq!(
            decompress("gzip", bomb.into(), 1 << 20).unwrap_err(),
            DecompressError::TooLarge(1 << 20)
        );
        let zs = zstd::encode_all(&zeros[..], 3).unwrap();
        assert_eq!(
            decompress("zstd", zs.into(), 1 << 20).unwrap_err(),
            DecompressError::TooLarge(1 << 20)
        );
        let sn = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert_eq!(
            decompress("snappy", sn.into(), 1 << 20).unwrap_err(),
            DecompressError::TooLarge(1 << 20)
        );
    }

    #[test]
    fn garbage_and_unknown_encodings_are_errors() {
        assert!(matches!(
            decompress("gzip", Bytes::from_static(b"not gzip"), 100),
            Err(DecompressError::Invalid { .. })
        ));
        assert!(matches!(
            decompress("br", Bytes::from_static(b"x"), 100),
            Err(DecompressError::Unsupported(_))
        ));
    }
}
