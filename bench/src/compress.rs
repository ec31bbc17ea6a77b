//! gzip and zstd for request bodies, both ways, with a size limit when decompressing.

use std::io::{Read, Write};

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The level used when none is given: gzip 6 (zlib's and the SDKs' default), zstd 3.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 6,
            Compression::Zstd => 3,
        }
    }
}

/// Compresses `data` into a new buffer that starts with `reserve` zero bytes (room for a
/// frame header).
pub fn compress(
    kind: Compression,
    level: i32,
    data: &[u8],
    reserve: usize,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(reserve + data.len() / 4);
    out.resize(reserve, 0);
    match kind {
        Compression::None => {
            out.extend_from_slice(data);
            Ok(out)
        }
        Compression::Gzip => {
            let level = flate2::Compression::new(level.clamp(0, 9) as u32);
            let mut enc = flate2::write::GzEncoder::new(out, level);
            enc.write_all(data)?;
            enc.finish()
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, level)?;
            enc.write_all(data)?;
            enc.finish()
        }
    }
}

/// Decompresses `data` by its `Content-Encoding` / `grpc-encoding` name, refusing output
/// larger than `limit` bytes.
pub fn decompress(encoding: &str, data: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4);
    let cap = limit as u64 + 1;
    match encoding {
        "" | "identity" => return Ok(data.to_vec()),
        "gzip" => flate2::read::MultiGzDecoder::new(data)
            .take(cap)
            .read_to_end(&mut out)?,
        "deflate" => flate2::read::ZlibDecoder::new(data)
            .take(cap)
            .read_to_end(&mut out)?,
        "zstd" => zstd::stream::read::Decoder::new(data)?
            .take(cap)
            .read_to_end(&mut out)?,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("unsupported encoding {other:?}"),
            ))
        }
    };
    if out.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "decompressed body over the limit",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        for kind in [Compression::Gzip, Compression::Zstd] {
            let c = compress(kind, kind.default_level(), &data, 3).unwrap();
            assert!(c.len() < data.len());
            assert_eq!(&c[..3], &[0, 0, 0]);
            assert_eq!(decompress(kind.name(), &c[3..], 1 << 20).unwrap(), data);
            assert!(decompress(kind.name(), &c[3..], 100).is_err());
        }
    }
}
