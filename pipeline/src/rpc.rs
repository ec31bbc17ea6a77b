//! `google.rpc.Status` and `RetryInfo`, the error details OTLP uses, and the mapping of
//! refusals onto gRPC codes and HTTP statuses.

use std::time::Duration;

use crate::component::{ConsumeError, ErrorKind};

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// gRPC status codes used here.
pub mod code {
    pub const OK: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

impl ErrorKind {
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorKind::Unavailable => code::UNAVAILABLE,
            ErrorKind::ResourceExhausted => code::RESOURCE_EXHAUSTED,
            ErrorKind::InvalidArgument => code::INVALID_ARGUMENT,
            ErrorKind::Internal => code::INTERNAL,
        }
    }

    /// The HTTP status upstream's OTLP receiver answers for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Unavailable => 503,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Internal => 500,
        }
    }
}

/// The `google.rpc.Status` for a refusal, with RetryInfo when a delay is known.
pub fn status_for(error: &ConsumeError) -> Status {
    let mut details = Vec::new();
    if let Some(delay) = error.retry_after {
        details.push(retry_info_any(delay));
    }
    Status {
        code: error.kind.grpc_code(),
        message: error.message.clone(),
        details,
    }
}

pub fn retry_info_any(delay: Duration) -> Any {
    use prost::Message;
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    Any {
        type_url: RETRY_INFO_TYPE.to_string(),
        value: info.encode_to_vec(),
    }
}

/// Whole seconds for a `Retry-After` header, at least 1.
pub fn retry_after_seconds(delay: Duration) -> u64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.max(1)
}
