//! The converted schema, kept between provider starts. Terraform starts the provider for every
//! `validate` and `test`, and converting the 4 MB document is most of such a start's work
//! (0.35 s in a debug build). `OFFLINE_PROVIDER_CACHE` names the file; unset, nothing is kept.
//! A file written from another schema, or by another build of this binary, is not used.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use prost::bytes::Bytes;
use prost::Message;

use crate::proto::GetMetadataResponse;

pub const CACHE_ENV: &str = "OFFLINE_PROVIDER_CACHE";
const MAGIC: &[u8; 8] = b"tfoffpc1";

pub struct Cache {
    path: PathBuf,
    key: u64,
}

/// What a provider start needs of the schema: the metadata, and the encoded schema reply.
pub struct Converted {
    pub metadata: GetMetadataResponse,
    pub schema_reply: Bytes,
}

impl Cache {
    /// The cache of `schema` (the document's bytes) as this binary converts it, if one is set.
    pub fn for_schema(schema: &[u8]) -> Option<Cache> {
        let path = PathBuf::from(std::env::var_os(CACHE_ENV)?);
        let mut hasher = DefaultHasher::new();
        schema.hash(&mut hasher);
        // A rebuilt provider may convert differently: the binary file is part of the key.
        let binary = std::env::current_exe().and_then(std::fs::metadata).ok()?;
        (binary.len(), binary.modified().ok()).hash(&mut hasher);
        Some(Cache { path, key: hasher.finish() })
    }

    /// The conversion stored for this key; anything else in the file (or no file) is a miss.
    pub fn read(&self) -> Option<Converted> {
        let data = Bytes::from(std::fs::read(&self.path).ok()?);
        let header = MAGIC.len() + 24;
        if data.len() < header || &data[..MAGIC.len()] != MAGIC {
            return None;
        }
        let number = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let (key, metadata_len, reply_len) = (number(8), number(16) as usize, number(24) as usize);
        if key != self.key || data.len() != header + metadata_len + reply_len {
            return None;
        }
        let metadata = GetMetadataResponse::decode(&data[header..header + metadata_len]).ok()?;
        Some(Converted { metadata, schema_reply: data.slice(header + metadata_len..) })
    }

    /// Stores a conversion. Providers start several at a time: each writes a file of its own and
    /// renames it over the cache, so a reader sees a whole file, old or new.
    pub fn write(&self, converted: &Converted) -> Result<(), String> {
        let metadata = converted.metadata.encode_to_vec();
        let mut data = Vec::with_capacity(MAGIC.len() + 24 + metadata.len() + converted.schema_reply.len());
        data.extend_from_slice(MAGIC);
        for number in [self.key, metadata.len() as u64, converted.schema_reply.len() as u64] {
            data.extend_from_slice(&number.to_le_bytes());
        }
        data.extend_from_slice(&metadata);
        data.extend_from_slice(&converted.schema_reply);
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let written = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, &self.path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot keep the converted schema in {}: {e}", self.path.display())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TypeNameMetadata;

    fn converted() -> Converted {
        let metadata = GetMetadataResponse {
            resources: vec![TypeNameMetadata { type_name: "aws_s3_bucket".into() }],
            ..Default::default()
        };
        Converted { metadata, schema_reply: Bytes::from_static(b"encoded reply") }
    }

    #[test]
    fn a_stored_conversion_is_read_back_only_under_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.cache");
        let cache = Cache { path: path.clone(), key: 7 };
        assert!(cache.read().is_none(), "no file is a miss");
        cache.write(&converted()).unwrap();
        let read = cache.read().expect("a hit");
        assert_eq!(read.metadata, converted().metadata);
        assert_eq!(read.schema_reply, converted().schema_reply);
        assert!(Cache { path: path.clone(), key: 8 }.read().is_none(), "another schema or build is a miss");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn a_truncated_or_foreign_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.cache");
        let cache = Cache { path: path.clone(), key: 7 };
        cache.write(&converted()).unwrap();
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        assert!(cache.read().is_none(), "truncated");
        std::fs::write(&path, b"not a cache").unwrap();
        assert!(cache.read().is_none(), "foreign");
    }
}
