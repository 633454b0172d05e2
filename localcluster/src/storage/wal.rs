//! On-disk format: length-prefixed, checksummed records, used both by the write-ahead log and the
//! snapshot file.
//!
//! A record is `len: u32 LE | crc32(payload): u32 LE | payload`, the payload being one JSON
//! document. A torn or corrupt tail (short read or checksum mismatch) marks the end of the valid
//! log: everything before it was fsynced and acknowledged, everything after it was not.

use std::fs::File;
use std::io::{self, Read, Write};

use serde_json::Value;

/// Records larger than this are treated as corruption (bodies are capped at 3 MiB upstream).
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// Append one framed record to `buf`.
pub fn frame(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Read every valid record of `file`. Returns the records and the byte length of the valid prefix.
pub fn read_records(file: &mut File) -> io::Result<(Vec<Value>, u64)> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        if len > MAX_RECORD {
            break;
        }
        let end = pos + 8 + len as usize;
        if end > data.len() {
            break;
        }
        let payload = &data[pos + 8..end];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(value) = serde_json::from_slice::<Value>(payload) else {
            break;
        };
        records.push(value);
        pos = end;
    }
    Ok((records, pos as u64))
}

/// Write `buf` and make it durable (data, not necessarily metadata: the file length is covered
/// because `sync_data` flushes the size when it changed).
pub fn append_durable(file: &mut File, buf: &[u8]) -> io::Result<()> {
    file.write_all(buf)?;
    file.sync_data()
}
