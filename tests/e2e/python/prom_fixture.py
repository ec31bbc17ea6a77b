"""Prometheus targets and an independent reading of what they expose, for the tests.

serve: an HTTP server on 127.0.0.1:PORT for the files of DIR. `/<name>` answers the file
  `<name>.txt` as the text format 0.0.4, `<name>.om` as OpenMetrics 1.0; `/slow` answers
  after --slow seconds; anything else 404. Prints "ready" once listening.

kube: a stand-in for the Kubernetes API server on 127.0.0.1:PORT that lists two pods on
  node-a (one annotated for scraping, with a container port --target-port) and one pod on
  node-b, honours `fieldSelector=spec.nodeName=...`, and holds watches open without events.

generate: writes py.txt (text format) and py.om (OpenMetrics) into DIR, from one
  prometheus_client registry with every metric type, exemplars, escapes and units.

compare: reads a snapshot with prometheus_client's parsers (the text format or OpenMetrics)
  and the OTLP/JSON lines a file exporter wrote, takes the first scrape of --job, turns its
  metrics back into Prometheus samples, and prints the differences; exits 1 if any.

usage:
  prom_fixture.py serve --dir DIR --port PORT [--slow SECONDS]
  prom_fixture.py generate --dir DIR
  prom_fixture.py kube --port PORT --target-port PORT
  prom_fixture.py compare --snapshot FILE --format text|openmetrics --otlp FILE --job JOB
"""

import argparse
import http.server
import json
import math
import os
import sys
import time

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

REPORT = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}


def serve(args):
    slow = args.slow

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/").split("?")[0]
            if name == "slow":
                time.sleep(slow)
            for ext, ctype in (
                (".txt", "text/plain; version=0.0.4; charset=utf-8"),
                (".om", "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            ):
                path = os.path.join(args.dir, name + ext)
                if os.path.isfile(path):
                    body = open(path, "rb").read()
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def kube(args):
    def pod(name, node, scrape, port):
        return {
            "metadata": {
                "name": name,
                "namespace": "shop",
                "uid": f"uid-{name}",
                "labels": {"app.kubernetes.io/name": name, "tier": "web"},
                "annotations": {"prometheus.io/scrape": scrape, "prometheus.io/path": "/py"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-5d9f", "controller": True}],
            },
            "spec": {
                "nodeName": node,
                "containers": [{"name": "app", "image": "shop:1", "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]}],
            },
            "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }

    pods = [
        pod("checkout", "node-a", "true", args.target_port),
        pod("quiet", "node-a", "false", args.target_port),
        pod("elsewhere", "node-b", "true", args.target_port),
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            from urllib.parse import parse_qs, urlparse

            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path not in ("/api/v1/pods", "/api/v1/namespaces/shop/pods"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if query.get("watch") == ["true"] or query.get("watch") == ["1"]:
                # No events: hold the watch for a while, then end it cleanly.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                time.sleep(2)
                self.wfile.write(b"0\r\n\r\n")
                return
            selected = pods
            for sel in query.get("fieldSelector", []):
                for term in sel.split(","):
                    if term.startswith("spec.nodeName="):
                        node = term.split("=", 1)[1]
                        selected = [p for p in selected if p["spec"]["nodeName"] == node]
            body = json.dumps({
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "100"},
                "items": selected,
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def generate(args):
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Enum,
        Gauge,
        Histogram,
        Info,
        Summary,
        generate_latest,
    )
    from prometheus_client.openmetrics.exposition import generate_latest as generate_om

    registry = CollectorRegistry()
    orders = Counter(
        "orders", "Orders taken, by aggregator.", ["aggregator", "status"], registry=registry
    )
    orders.labels("swiggy", "accepted").inc(41)
    orders.labels("zomato", "rejected").inc(2)
    orders.labels('quote"back\\slash', "new\nline").inc(1)
    latency = Histogram(
        "request_latency_seconds",
        "Request latency.",
        ["route"],
        buckets=(0.005, 0.1, 1.0, 2.5),
        registry=registry,
    )
    for v in (0.001, 0.05, 0.2, 0.7, 3.0, 0.09):
        latency.labels("/api").observe(v)
    latency.labels("/health").observe(
        0.003, exemplar={"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    )
    sizes = Summary("payload_bytes", "Payload sizes.", registry=registry)
    for v in (100, 2500, 40):
        sizes.observe(v)
    queue = Gauge("queue_depth", "Items waiting.", ["queue"], registry=registry, unit="items")
    queue.labels("orders").set(17)
    queue.labels("refunds").set(float("nan"))
    temp = Gauge("temperature_celsius", "Temperature.", registry=registry)
    temp.set(-3.25e-2)
    Info("build", "Build information.", registry=registry).info({"version": "1.2.3", "commit": "abc"})
    Enum("state", "Service state.", states=["starting", "running", "stopped"], registry=registry).state("running")
    with open(os.path.join(args.dir, "py.txt"), "wb") as f:
        f.write(generate_latest(registry))
    with open(os.path.join(args.dir, "py.om"), "wb") as f:
        f.write(generate_om(registry))
    return 0


def number(v):
    """A float as one canonical string, NaN and infinities included."""
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return repr(f)


def key(name, labels):
    labels = {k: v for k, v in labels.items() if v != ""}
    for special in ("le", "quantile"):
        if special in labels:
            labels[special] = number(labels[special])
    return name + json.dumps(sorted(labels.items()))


def expected(snapshot, fmt):
    text = open(snapshot, encoding="utf-8").read()
    parse = om_families if fmt == "openmetrics" else text_families
    out = {}
    for family in parse(text):
        for s in family.samples:
            # A family's own _created becomes its start time, not a series, as upstream's
            # receiver reads it; a separately typed `x_created` gauge stays a series.
            if s.name.endswith("_created") and family.type in ("counter", "histogram", "summary"):
                continue
            out[key(s.name, s.labels)] = number(s.value)
    return out


def attrs(kvs):
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values()), "") if v else ""
    return out


def json_number(v):
    if isinstance(v, str):
        return {"NaN": "NaN", "Infinity": "+Inf", "-Infinity": "-Inf"}.get(v, number(v))
    return number(v)


def actual(otlp, job):
    for line in open(otlp, encoding="utf-8"):
        request = json.loads(line)
        for rm in request.get("resourceMetrics", []):
            resource = attrs(rm.get("resource", {}).get("attributes"))
            if resource.get("service.name") != job:
                continue
            out = {}
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    name = m["name"]
                    if name in REPORT:
                        continue
                    # An info family's samples are named `<family>_info`.
                    if attrs(m.get("metadata")).get("prometheus.type") == "info":
                        name += "_info"
                    if "gauge" in m or "sum" in m:
                        for p in (m.get("gauge") or m.get("sum"))["dataPoints"]:
                            value = p.get("asDouble", p.get("asInt", 0))
                            out[key(name, attrs(p.get("attributes")))] = json_number(value)
                    elif "histogram" in m:
                        for p in m["histogram"]["dataPoints"]:
                            labels = attrs(p.get("attributes"))
                            counts = [int(c) for c in p.get("bucketCounts", [])]
                            bounds = list(p.get("explicitBounds", [])) + ["+Inf"]
                            total = 0
                            for bound, c in zip(bounds, counts):
                                total += c
                                out[key(name + "_bucket", dict(labels, le=str(bound)))] = number(total)
                            out[key(name + "_count", labels)] = number(int(p.get("count", 0)))
                            if "sum" in p:
                                out[key(name + "_sum", labels)] = json_number(p["sum"])
                    elif "summary" in m:
                        for p in m["summary"]["dataPoints"]:
                            labels = attrs(p.get("attributes"))
                            for q in p.get("quantileValues", []):
                                qk = dict(labels, quantile=str(q.get("quantile", 0)))
                                out[key(name, qk)] = json_number(q.get("value", 0))
                            out[key(name + "_count", labels)] = number(int(p.get("count", 0)))
                            out[key(name + "_sum", labels)] = json_number(p.get("sum", 0))
            return out
    return None


def compare(args):
    want = expected(args.snapshot, args.format)
    got = actual(args.otlp, args.job)
    if got is None:
        print(f"no scrape of job {args.job} in {args.otlp}")
        return 1
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    print(f"{args.job}: {len(want)} samples expected, {len(got)} written")
    for k in missing[:20]:
        print(f"MISSING {k} = {want[k]}")
    for k in extra[:20]:
        print(f"EXTRA {k} = {got[k]}")
    for k in wrong[:20]:
        print(f"WRONG {k}: expected {want[k]}, got {got[k]}")
    return 1 if (missing or extra or wrong) else 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--slow", type=float, default=5.0)
    k = sub.add_parser("kube")
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--target-port", type=int, required=True)
    g = sub.add_parser("generate")
    g.add_argument("--dir", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--snapshot", required=True)
    c.add_argument("--format", choices=["text", "openmetrics"], required=True)
    c.add_argument("--otlp", required=True)
    c.add_argument("--job", required=True)
    args = parser.parse_args()
    return {"serve": serve, "generate": generate, "compare": compare, "kube": kube}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
