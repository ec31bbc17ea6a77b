//! Reading an OTLP/HTTP response: the partial success of a 2xx, the `google.rpc.Status` of an
//! error, and `Retry-After`.

use std::time::{Duration, SystemTime};

use prost::Message;

use ferrotel_pipeline::exporter::{ExportError, Sent};
use ferrotel_pipeline::pdata::json;
use ferrotel_pipeline::pdata::{
    ExportLogsServiceResponse, ExportMetricsServiceResponse, ExportTraceServiceResponse, Signal,
};
use ferrotel_pipeline::rpc;

/// The media type of a `Content-Type` value, without parameters, lower-cased.
pub(crate) fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The partial success in a 2xx body, read in the response's own content type. An empty body
/// or another content type is a plain success; a body that does not parse is a permanent error.
pub(crate) fn partial_success(
    signal: Signal,
    media_type: &str,
    body: &[u8],
) -> Result<Sent, ExportError> {
    if body.is_empty() {
        return Ok(Sent::default());
    }
    let parsed: Result<Option<(i64, String)>, String> = match (media_type, signal) {
        (PROTOBUF, Signal::Traces) => ExportTraceServiceResponse::decode(body)
            .map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_spans, p.error_message))
            })
            .map_err(|e| e.to_string()),
        (PROTOBUF, Signal::Metrics) => ExportMetricsServiceResponse::decode(body)
            .map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_data_points, p.error_message))
            })
            .map_err(|e| e.to_string()),
        (PROTOBUF, Signal::Logs) => ExportLogsServiceResponse::decode(body)
            .map(|r| {
                r.partial_success
                    .map(|p| (p.rejected_log_records, p.error_message))
            })
            .map_err(|e| e.to_string()),
        (JSON, Signal::Traces) => {
            json::decode::<ExportTraceServiceResponse>(body, json::TRACES_RESPONSE)
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_spans, p.error_message))
                })
                .map_err(|e| e.to_string())
        }
        (JSON, Signal::Metrics) => {
            json::decode::<ExportMetricsServiceResponse>(body, json::METRICS_RESPONSE)
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_data_points, p.error_message))
                })
                .map_err(|e| e.to_string())
        }
        (JSON, Signal::Logs) => {
            json::decode::<ExportLogsServiceResponse>(body, json::LOGS_RESPONSE)
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_log_records, p.error_message))
                })
                .map_err(|e| e.to_string())
        }
        _ => Ok(None),
    };
    match parsed {
        Ok(Some((rejected, message))) => Ok(Sent {
            rejected_items: u64::try_from(rejected).unwrap_or(0),
            message,
        }),
        Ok(None) => Ok(Sent::default()),
        Err(e) => {
            let kind = if media_type == JSON {
                "json"
            } else {
                "protobuf"
            };
            Err(ExportError::permanent(format!(
                "error parsing {kind} response: {e}"
            )))
        }
    }
}

/// The message and detail types of a `google.rpc.Status` error body, if it has one.
pub(crate) fn error_status(media_type: &str, body: &[u8]) -> Option<(String, Vec<String>)> {
    if body.is_empty() {
        return None;
    }
    if media_type == JSON {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let message = object
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string();
        let details = object
            .get("details")
            .and_then(|d| d.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|d| d.get("@type").and_then(|t| t.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        return Some((message, details));
    }
    let status = rpc::Status::decode(body).ok()?;
    Some((
        status.message,
        status.details.into_iter().map(|d| d.type_url).collect(),
    ))
}

/// Upstream's text for a refused request.
pub(crate) fn error_message(url: &str, code: u16, status: Option<(String, Vec<String>)>) -> String {
    match status {
        Some((message, details)) => format!(
            "error exporting items, request to {url} responded with HTTP Status Code {code}, Message={message}, Details=[{}]",
            details.join(" ")
        ),
        None => format!(
            "error exporting items, request to {url} responded with HTTP Status Code {code}"
        ),
    }
}

/// `Retry-After` as whole seconds or an HTTP date (RFC 1123); a date in the past means now.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Mon, 02 Jan 2006 15:04:05 GMT` (the zone may be GMT, UTC or UT).
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let weekday = parts.next()?;
    if !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if !matches!(parts.next()?, "GMT" | "UTC" | "UT") || parts.next().is_some() {
        return None;
    }
    // A year outside this range is no real retry time, and would overflow the arithmetic.
    if !(1970..=9999).contains(&year)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absurd_retry_after_dates_are_ignored() {
        for text in [
            "Mon, 01 Jan 99999999999999 00:00:00 GMT",
            "Mon, 01 Jan -99999999999999 00:00:00 GMT",
            "Mon, 01 Jan 1969 00:00:00 GMT",
        ] {
            assert_eq!(parse_http_date(text), None, "{text}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("-3", now), Some(Duration::ZERO));
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            retry_after("Tue, 14 Nov 2023 22:13:25 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("Tue, 14 Nov 2023 22:13:25 PST", now), None);
    }

    #[test]
    fn partial_success_by_content_type() {
        let body = ExportTraceServiceResponse {
            partial_success: Some(ferrotel_pipeline::pdata::ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "bad".into(),
            }),
        };
        let sent = partial_success(Signal::Traces, PROTOBUF, &body.encode_to_vec()).unwrap();
        assert_eq!((sent.rejected_items, sent.message.as_str()), (2, "bad"));
        let json_body = json::encode_traces_response(&body);
        let sent = partial_success(Signal::Traces, JSON, &json_body).unwrap();
        assert_eq!(sent.rejected_items, 2);
        assert_eq!(
            partial_success(Signal::Traces, "text/plain", b"whatever").unwrap(),
            Sent::default()
        );
        assert!(matches!(
            partial_success(Signal::Logs, PROTOBUF, b"\xff\xff\xff"),
            Err(ExportError::Permanent { .. })
        ));
        assert!(matches!(
            partial_success(Signal::Logs, JSON, b"{not json"),
            Err(ExportError::Permanent { .. })
        ));
    }

    #[test]
    fn error_bodies_in_either_encoding() {
        let st = rpc::Status {
            code: 3,
            message: "no good".into(),
            details: vec![rpc::retry_info_any(Duration::from_secs(1))],
        };
        let (m, d) = error_status(PROTOBUF, &st.encode_to_vec()).unwrap();
        assert_eq!(m, "no good");
        assert_eq!(d, vec![rpc::RETRY_INFO_TYPE.to_string()]);
        let (m, _) = error_status(JSON, br#"{"code":3,"message":"json no good"}"#).unwrap();
        assert_eq!(m, "json no good");
        assert_eq!(error_status(PROTOBUF, b""), None);
        assert_eq!(
            error_message("http://x/v1/logs", 400, Some(("m".into(), vec![]))),
            "error exporting items, request to http://x/v1/logs responded with HTTP Status Code 400, Message=m, Details=[]"
        );
    }
}
