"""An OTLP backend for delivery tests: gRPC and HTTP (protobuf or JSON) on loopback ports.

Every request it accepts is written as one JSON line to --out:
  {"seq", "port", "transport", "signal", "path", "content_type", "content_encoding",
   "headers", "items", "protobuf" (the request re-serialized, base64), "mono", "unix"}
Every attempt, accepted or not, is written as one JSON line to --attempts:
  {"attempt" (1-based, per port), "port", "transport", "signal", "items", "digest"
   (sha256 of the request re-serialized), "outcome" ("accepted", "failed", "bad_request",
   "unsupported"), "status" (HTTP status or gRPC code name), "start_mono", "end_mono"}
"mono" times are time.monotonic() seconds of this process.

Failures are scripted on the command line:
  --fail-first N      the first N attempts on each port fail
  --always-status S   every attempt fails
  --fail-status S     the HTTP status of a failure (default 503); gRPC gets the matching code
  --fail-grpc-code C  override the gRPC code of a failure (e.g. UNAVAILABLE)
  --retry-after SECS  failures carry HTTP Retry-After / gRPC RetryInfo
  --resource-exhausted-with-retry-info DURATION
                      failures are HTTP 429 with Retry-After / gRPC RESOURCE_EXHAUSTED with
                      RetryInfo of DURATION (e.g. 1s, 500ms); needs --fail-first or
                      --always-status
  --delay-ms N        every answer waits N ms first
A failure answers with a google.rpc.Status body (HTTP) or status details (gRPC). Bodies are
gzip or uncompressed; any other Content-Encoding is answered 415. Prints "ready" once every
port listens.

usage: otlp_sink.py --out FILE --attempts FILE [--grpc-port P]... [--http-port P]... [options]
"""

import argparse
import base64
import gzip
import hashlib
import json
import math
import re
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import duration_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SIGNALS = {
    "traces": (
        "opentelemetry.proto.collector.trace.v1.TraceService",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "metrics": (
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "logs": (
        "opentelemetry.proto.collector.logs.v1.LogsService",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}

# gRPC code for an HTTP failure status, as the OTLP HTTP/gRPC mappings pair them.
GRPC_CODE_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}

# OTLP/JSON carries these ids as hex; protobuf JSON expects base64.
ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
HEX = re.compile(r"^[0-9a-fA-F]*$")


class BadRequest(Exception):
    pass


class Unsupported(Exception):
    pass


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 500ms, 1s)")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def item_count(signal, req):
    if signal == "traces":
        return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)
    points = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points


def hex_ids_to_base64(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ID_KEYS and isinstance(v, str):
                if not HEX.match(v) or len(v) % 2:
                    raise BadRequest(f"{k} is not hex: {v!r}")
                out[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                out[k] = hex_ids_to_base64(v)
        return out
    if isinstance(node, list):
        return [hex_ids_to_base64(v) for v in node]
    return node


def decode(signal, content_type, body):
    message = SIGNALS[signal][1]()
    try:
        if content_type == "application/json":
            json_format.ParseDict(
                hex_ids_to_base64(json.loads(body)), message, ignore_unknown_fields=True
            )
        else:
            message.ParseFromString(body)
    except BadRequest:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding problem is the client's
        raise BadRequest(f"cannot decode {signal} as {content_type}: {e}") from e
    return message


class Sink:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.out = open(args.out, "a", encoding="utf-8")
        self.attempt_log = open(args.attempts, "a", encoding="utf-8")
        self.attempts = {}
        self.seq = 0
        self.fail_status = args.fail_status
        self.grpc_code = args.fail_grpc_code
        self.retry_delay = args.retry_after
        if args.resource_exhausted_with_retry_info is not None:
            self.fail_status = 429
            self.grpc_code = "RESOURCE_EXHAUSTED"
            self.retry_delay = args.resource_exhausted_with_retry_info
        if args.always_status is not None:
            self.fail_status = args.always_status
        if self.grpc_code is None:
            self.grpc_code = GRPC_CODE_FOR_HTTP.get(self.fail_status, "UNKNOWN")

    def next_attempt(self, port):
        with self.lock:
            n = self.attempts.get(port, 0) + 1
            self.attempts[port] = n
            return n

    def should_fail(self, attempt):
        return self.args.always_status is not None or attempt <= self.args.fail_first

    def log_attempt(self, entry):
        with self.lock:
            self.attempt_log.write(json.dumps(entry) + "\n")
            self.attempt_log.flush()

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.out.write(json.dumps(entry) + "\n")
            self.out.flush()

    def failure_status(self, attempt):
        """The google.rpc.Status of a scripted failure."""
        st = status_pb2.Status(
            code=grpc.StatusCode[self.grpc_code].value[0],
            message=f"otlp_sink: scripted failure of attempt {attempt}",
        )
        if self.retry_delay is not None:
            info = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=int(self.retry_delay),
                    nanos=int(round((self.retry_delay % 1) * 1e9)),
                )
            )
            st.details.add().Pack(info)
        return st

    def handle(self, transport, port, signal, content_type, encoding, headers, path, parse):
        """One attempt: returns ("ok", message) or ("fail", status) or raises BadRequest."""
        start = time.monotonic()
        attempt = self.next_attempt(port)
        entry = {
            "attempt": attempt,
            "port": port,
            "transport": transport,
            "signal": signal,
            "items": None,
            "digest": None,
            "start_mono": start,
        }
        try:
            message = parse()
        except (BadRequest, Unsupported) as e:
            kind = "bad_request" if isinstance(e, BadRequest) else "unsupported"
            entry.update(outcome=kind, status=None, error=str(e), end_mono=time.monotonic())
            self.log_attempt(entry)
            raise
        canonical = message.SerializeToString(deterministic=True)
        entry["items"] = item_count(signal, message)
        entry["digest"] = hashlib.sha256(canonical).hexdigest()
        if self.args.delay_ms:
            time.sleep(self.args.delay_ms / 1000.0)
        if self.should_fail(attempt):
            status = self.fail_status if transport == "http" else self.grpc_code
            entry.update(outcome="failed", status=status, end_mono=time.monotonic())
            self.log_attempt(entry)
            return "fail", self.failure_status(attempt)
        self.record(
            {
                "port": port,
                "transport": transport,
                "signal": signal,
                "path": path,
                "content_type": content_type,
                "content_encoding": encoding,
                "headers": headers,
                "items": entry["items"],
                "protobuf": base64.b64encode(canonical).decode(),
                "mono": time.monotonic(),
                "unix": time.time(),
            }
        )
        entry.update(outcome="accepted", status=200 if transport == "http" else "OK")
        entry["end_mono"] = time.monotonic()
        self.log_attempt(entry)
        return "ok", message


def grpc_handler(sink, port, signal):
    _, request_type, response_type = SIGNALS[signal]

    def export(raw, context):
        metadata = {}
        for key, value in context.invocation_metadata():
            if not key.endswith("-bin"):
                metadata[key] = value

        def parse():
            message = request_type()
            try:
                message.ParseFromString(raw)
            except Exception as e:  # noqa: BLE001
                raise BadRequest(f"cannot decode {signal}: {e}") from e
            return message

        try:
            outcome, result = sink.handle(
                "grpc",
                port,
                signal,
                "application/grpc",
                metadata.get("grpc-encoding"),
                metadata,
                SIGNALS[signal][0] + "/Export",
                parse,
            )
        except BadRequest as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if outcome == "ok":
            return response_type()
        context.set_trailing_metadata((("grpc-status-details-bin", result.SerializeToString()),))
        context.abort(grpc.StatusCode[sink.grpc_code], result.message)

    return grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=lambda b: b,
        response_serializer=lambda m: m.SerializeToString(),
    )


def start_grpc(sink, port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    handlers = [
        grpc.method_handlers_generic_handler(service, {"Export": grpc_handler(sink, port, signal)})
        for signal, (service, _, _) in SIGNALS.items()
    ]
    server.add_generic_rpc_handlers(handlers)
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        raise OSError(f"cannot listen on 127.0.0.1:{port}")
    server.start()
    return server


def http_handler_class(sink, port):
    paths = {f"/v1/{s}": s for s in SIGNALS}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def reply(self, status, content_type, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_GET(self):  # noqa: N802
            self.reply(405, "text/plain", b"405 method not allowed\n")

        def do_POST(self):  # noqa: N802
            raw = self.read_body()
            signal = paths.get(self.path)
            if signal is None:
                self.reply(404, "text/plain", b"404 not found\n")
                return
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            encoding = self.headers.get("Content-Encoding", "").strip().lower() or None
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply_type = (
                "application/json" if content_type == "application/json" else "application/x-protobuf"
            )

            def parse():
                if content_type not in ("application/x-protobuf", "application/json"):
                    raise Unsupported(f"unsupported media type {content_type!r}")
                body = raw
                if encoding == "gzip":
                    try:
                        body = gzip.decompress(raw)
                    except Exception as e:  # noqa: BLE001
                        raise BadRequest(f"bad gzip body: {e}") from e
                elif encoding not in (None, "identity"):
                    raise Unsupported(f"unsupported content encoding {encoding!r}")
                return decode(signal, content_type, body)

            def encode(message):
                if reply_type == "application/json":
                    return json_format.MessageToJson(message).encode()
                return message.SerializeToString()

            try:
                outcome, result = sink.handle(
                    "http", port, signal, content_type, encoding, headers, self.path, parse
                )
            except Unsupported as e:
                self.reply(415, "text/plain", f"415 {e}\n".encode())
                return
            except BadRequest as e:
                st = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=str(e))
                self.reply(400, reply_type, encode(st))
                return
            if outcome == "ok":
                self.reply(200, reply_type, encode(SIGNALS[signal][2]()))
                return
            extra = []
            if sink.retry_delay is not None:
                extra.append(("Retry-After", str(max(1, math.ceil(sink.retry_delay)))))
            self.reply(sink.fail_status, reply_type, encode(result), extra)

    return Handler


def start_http(sink, port):
    server = ThreadingHTTPServer(("127.0.0.1", port), http_handler_class(sink, port))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--attempts", required=True)
    parser.add_argument("--grpc-port", type=int, action="append", default=[])
    parser.add_argument("--http-port", type=int, action="append", default=[])
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--fail-grpc-code", choices=[c.name for c in grpc.StatusCode])
    parser.add_argument("--always-status", type=int)
    parser.add_argument("--retry-after", type=float)
    parser.add_argument("--resource-exhausted-with-retry-info", type=parse_duration)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    if not args.grpc_port and not args.http_port:
        parser.error("give at least one --grpc-port or --http-port")
    if args.resource_exhausted_with_retry_info is not None and not (
        args.fail_first or args.always_status is not None
    ):
        parser.error("--resource-exhausted-with-retry-info needs --fail-first or --always-status")

    sink = Sink(args)
    try:
        servers = [start_grpc(sink, p) for p in args.grpc_port]
        http_servers = [start_http(sink, p) for p in args.http_port]
    except OSError as e:
        print(f"otlp_sink: {e}", file=sys.stderr, flush=True)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.wait(0.2):
        pass
    for s in http_servers:
        s.shutdown()
    for s in servers:
        s.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
