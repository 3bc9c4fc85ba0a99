//! Loki's push request as Alloy's `loki.write` sends it: protobuf (`logproto.PushRequest`),
//! snappy-compressed (block format), `Content-Type: application/x-protobuf`. Encoded and decoded
//! here, so `verify capacity` and the Loki stand-in speak one wire format.
//!
//! PushRequest { repeated Stream streams = 1 }; Stream { string labels = 1; repeated Entry
//! entries = 2 }; Entry { Timestamp timestamp = 1; string line = 2; repeated LabelPair
//! structuredMetadata = 3 }; Timestamp { int64 seconds = 1; int32 nanos = 2 };
//! LabelPair { string name = 1; string value = 2 } (pkg/push/push.proto).

use anyhow::{bail, Context};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ts_ns: u128,
    pub line: String,
    /// Structured metadata (name, value).
    pub metadata: Vec<(String, String)>,
}

/// One stream: its labels as LogQL writes them (`{a="b", c="d"}`) and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub labels: String,
    pub entries: Vec<Entry>,
}

/// The request body: the protobuf, snappy-compressed.
pub fn encode(streams: &[Stream]) -> Vec<u8> {
    let mut request = Vec::new();
    for stream in streams {
        let mut body = Vec::new();
        field_bytes(&mut body, 1, stream.labels.as_bytes());
        for entry in &stream.entries {
            let mut timestamp = Vec::new();
            field_varint(&mut timestamp, 1, (entry.ts_ns / 1_000_000_000) as u64);
            field_varint(&mut timestamp, 2, (entry.ts_ns % 1_000_000_000) as u64);
            let mut encoded = Vec::new();
            field_bytes(&mut encoded, 1, &timestamp);
            field_bytes(&mut encoded, 2, entry.line.as_bytes());
            for (name, value) in &entry.metadata {
                let mut pair = Vec::new();
                field_bytes(&mut pair, 1, name.as_bytes());
                field_bytes(&mut pair, 2, value.as_bytes());
                field_bytes(&mut encoded, 3, &pair);
            }
            field_bytes(&mut body, 2, &encoded);
        }
        field_bytes(&mut request, 1, &body);
    }
    snap::raw::Encoder::new().compress_vec(&request).expect("snappy compresses any input")
}

/// The streams of a request body; an error says what is malformed (as Loki answers 400).
pub fn decode(body: &[u8]) -> anyhow::Result<Vec<Stream>> {
    let request = snap::raw::Decoder::new().decompress_vec(body).context("the body is not snappy-compressed")?;
    let mut streams = Vec::new();
    for (number, value) in fields(&request)? {
        if number != 1 {
            continue;
        }
        let mut stream = Stream { labels: String::new(), entries: Vec::new() };
        for (number, value) in fields(value.bytes()?)? {
            match number {
                1 => stream.labels = text(value.bytes()?)?,
                2 => {
                    let mut entry = Entry { ts_ns: 0, line: String::new(), metadata: Vec::new() };
                    for (number, value) in fields(value.bytes()?)? {
                        match number {
                            1 => {
                                for (number, value) in fields(value.bytes()?)? {
                                    match number {
                                        1 => entry.ts_ns += u128::from(value.varint()?) * 1_000_000_000,
                                        2 => entry.ts_ns += u128::from(value.varint()?),
                                        _ => {}
                                    }
                                }
                            }
                            2 => entry.line = text(value.bytes()?)?,
                            3 => {
                                let (mut name, mut content) = (String::new(), String::new());
                                for (number, value) in fields(value.bytes()?)? {
                                    match number {
                                        1 => name = text(value.bytes()?)?,
                                        2 => content = text(value.bytes()?)?,
                                        _ => {}
                                    }
                                }
                                entry.metadata.push((name, content));
                            }
                            _ => {}
                        }
                    }
                    stream.entries.push(entry);
                }
                _ => {}
            }
        }
        streams.push(stream);
    }
    Ok(streams)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn field_varint(out: &mut Vec<u8>, number: u64, value: u64) {
    varint(out, number << 3);
    varint(out, value);
}

fn field_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    fn bytes(&self) -> anyhow::Result<&'a [u8]> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            Value::Varint(_) => bail!("a varint where bytes belong"),
        }
    }

    fn varint(&self) -> anyhow::Result<u64> {
        match self {
            Value::Varint(value) => Ok(*value),
            Value::Bytes(_) => bail!("bytes where a varint belongs"),
        }
    }
}

fn read_varint(bytes: &[u8], at: &mut usize) -> anyhow::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).context("a truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    bail!("a varint longer than 64 bits")
}

/// The (field number, value) pairs of one message; wire types 0 and 2 only, as logproto uses.
fn fields(bytes: &[u8]) -> anyhow::Result<Vec<(u64, Value<'_>)>> {
    let (mut at, mut out) = (0, Vec::new());
    while at < bytes.len() {
        let key = read_varint(bytes, &mut at)?;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(bytes, &mut at)?),
            2 => {
                let length = read_varint(bytes, &mut at)? as usize;
                let value = bytes.get(at..at + length).context("a truncated field")?;
                at += length;
                Value::Bytes(value)
            }
            other => bail!("wire type {other}, which logproto does not use"),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> anyhow::Result<String> {
    String::from_utf8(bytes.to_vec()).context("a string that is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_survives_the_wire_with_its_structured_metadata() {
        let streams = vec![Stream {
            labels: r#"{service_name="xtask-capacity"}"#.into(),
            entries: vec![
                Entry {
                    ts_ns: 1_796_640_960_123_456_789,
                    line: "one".into(),
                    metadata: vec![("task_id".into(), "abc".into())],
                },
                Entry { ts_ns: 1, line: "two ✓".into(), metadata: vec![] },
            ],
        }];
        let body = encode(&streams);
        assert_eq!(decode(&body).unwrap(), streams);
        // A known encoding: field 1 (labels) of the stream, "{}".
        let empty = vec![Stream { labels: "{}".into(), entries: vec![] }];
        let raw = snap::raw::Decoder::new().decompress_vec(&encode(&empty)).unwrap();
        assert_eq!(raw, [0x0a, 0x04, 0x0a, 0x02, b'{', b'}']);
        assert!(decode(b"not snappy at all").is_err());
    }
}
