//! What a backend sees of the sender's settings: the path and the compression of each
//! export call. The native stack test relies on these to check the collector's Loki
//! exporter without Loki.

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    resource::v1::Resource,
};
use otlp_receiver::OtlpReceiver;
use prost::Message;
use std::io::Write;

fn one_log_record() -> Vec<u8> {
    let text = |s: &str| {
        Some(AnyValue {
            value: Some(Value::StringValue(s.into())),
        })
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: text("service-a"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: text("order created"),
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_prefixed_http_receiver_takes_gzip_on_its_path_and_404s_elsewhere() {
    let receiver = OtlpReceiver::start_with(None, Some("127.0.0.1:0"), "/otlp")
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, body: Vec<u8>, encoding: Option<&str>| {
        let mut request = client
            .post(format!("{}{path}", receiver.http_endpoint()))
            .header("content-type", "application/x-protobuf")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send()
    };

    let ok = post("/otlp/v1/logs", gzip(&one_log_record()), Some("gzip"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Loki's old push path, or a missing prefix: not found, nothing stored.
    for wrong in ["/loki/api/v1/push", "/v1/logs"] {
        let answer = post(wrong, one_log_record(), None).await.unwrap();
        assert_eq!(answer.status(), 404, "{wrong}");
    }

    let logs = receiver.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].body, "order created");
    assert_eq!(logs[0].trace_id, "ab".repeat(16));
    assert_eq!(logs[0].resource["service.name"], "service-a");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0].path.as_str(), requests[0].encoding.as_str()),
        ("/otlp/v1/logs", "gzip")
    );
}
