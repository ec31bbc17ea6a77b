"""Sends spans, metrics and logs to an OTLP endpoint with the OpenTelemetry Python SDK.

Every batch the SDK hands to its OTLP exporter is also recorded, encoded with the SDK's own
OTLP encoder, and printed at the end as OTLP/JSON (hex ids, int64 as strings, enums as ints):
{"traces": [request...], "metrics": [...], "logs": [...]}. Exits 1 if any export failed.

usage: send_sdk.py --protocol grpc|http --endpoint HOST:PORT --service-name NAME
"""

import argparse
import base64
import json
import sys
import time

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode

ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def to_otlp_json(message):
    """ProtoJSON as the SDK would send it, with ids rewritten from base64 to hex (OTLP/JSON)."""

    def fix(node):
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ID_KEYS and isinstance(v, str) else fix(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return fix(json_format.MessageToDict(message, use_integers_for_enums=True))


class Recorder:
    def __init__(self):
        self.sent = {"traces": [], "metrics": [], "logs": []}
        self.failures = []

    def record(self, signal, request, ok):
        self.sent[signal].append(to_otlp_json(request))
        if not ok:
            self.failures.append(signal)


class TeeSpanExporter(SpanExporter):
    def __init__(self, inner, recorder):
        self._inner, self._recorder = inner, recorder

    def export(self, spans):
        result = self._inner.export(spans)
        self._recorder.record("traces", encode_spans(spans), result == SpanExportResult.SUCCESS)
        return result

    def shutdown(self):
        self._inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self._inner.force_flush(timeout_millis)


class TeeMetricExporter(MetricExporter):
    def __init__(self, inner, recorder):
        # The reader takes temporality and aggregation preferences from its exporter.
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner, self._recorder = inner, recorder

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        request = encode_metrics(metrics_data)
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self._recorder.record("metrics", request, result == MetricExportResult.SUCCESS)
        return result

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis=10_000):
        return self._inner.force_flush(timeout_millis)


class TeeLogExporter(LogRecordExporter):
    def __init__(self, inner, recorder):
        self._inner, self._recorder = inner, recorder

    def export(self, batch):
        result = self._inner.export(batch)
        self._recorder.record("logs", encode_logs(batch), result == LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self):
        self._inner.shutdown()

    def force_flush(self, timeout_millis=10_000):
        return self._inner.force_flush(timeout_millis)


def otlp_exporters(protocol, endpoint):
    delta_histograms = {Histogram: AggregationTemporality.DELTA}
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10),
            OTLPMetricExporter(
                endpoint=endpoint,
                insecure=True,
                timeout=10,
                preferred_temporality=delta_histograms,
            ),
            OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=10),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = f"http://{endpoint}"
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=10),
        OTLPMetricExporter(
            endpoint=f"{base}/v1/metrics", timeout=10, preferred_temporality=delta_histograms
        ),
        OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=10),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service-name", required=True)
    args = parser.parse_args()

    recorder = Recorder()
    span_exp, metric_exp, log_exp = otlp_exporters(args.protocol, args.endpoint)
    resource = Resource.create({"service.name": args.service_name, "deployment.environment": "e2e"})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(TeeSpanExporter(span_exp, recorder)))
    # A long interval: metrics go out exactly on force_flush and again on shutdown.
    reader = PeriodicExportingMetricReader(
        TeeMetricExporter(metric_exp, recorder), export_interval_millis=600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(TeeLogExporter(log_exp, recorder))
    )

    tracer = tracer_provider.get_tracer("e2e.tracer", "1.2.3")
    meter = meter_provider.get_meter("e2e.meter", "0.1.0")
    app_log = logger_provider.get_logger("e2e.app")
    events = logger_provider.get_logger("e2e.events")

    requests = meter.create_counter("e2e.requests", unit="1", description="Requests handled")
    latency = meter.create_histogram("e2e.latency", unit="ms", description="Request latency")
    depth = meter.create_up_down_counter("e2e.queue.depth", description="Items queued")
    temperature = meter.create_gauge("e2e.temperature", unit="Cel")
    meter.create_observable_gauge(
        "e2e.connections", callbacks=[lambda _options: [Observation(3, {"pool": "main"})]]
    )

    with tracer.start_as_current_span(
        "parent",
        kind=SpanKind.SERVER,
        attributes={
            "http.route": "/items",
            "retries": 3,
            "ratio": 0.25,
            "cached": True,
            "tags": ["a", "b"],
        },
    ) as parent:
        parent.add_event("checkpoint", {"step": 1})
        # Log records take their trace context from the current span.
        app_log.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="inside parent",
            attributes={"item.id": 42},
        )
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "db")
            child.add_event("query", {"rows": 7, "sql": "select 1"})
            events.emit(
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                body={"msg": "structured", "code": 7},
                attributes={"k": "v"},
            )
            child.set_status(Status(StatusCode.ERROR, "boom"))
        parent.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("standalone", kind=SpanKind.PRODUCER):
        pass
    app_log.emit(
        timestamp=time.time_ns(),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body="outside any span",
        attributes={"user": "alice"},
    )

    requests.add(1, {"route": "/a"})
    requests.add(5, {"route": "/a"})
    requests.add(2, {"route": "/b"})
    for value in (1.5, 7.0, 12.25, 300.0):
        latency.record(value, {"route": "/a"})
    depth.add(5)
    depth.add(-2)
    temperature.set(21.5, {"room": "lab"})

    flushed = [
        tracer_provider.force_flush(),
        meter_provider.force_flush(),
        logger_provider.force_flush(),
    ]
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()

    json.dump(recorder.sent, sys.stdout)
    sys.stdout.write("\n")
    if not all(flushed) or recorder.failures:
        print(f"flushed={flushed} failed exports={recorder.failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
