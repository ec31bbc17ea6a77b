"""A Kafka client for the tests, on the confluent-kafka wheel (librdkafka as Confluent ships it).

produce: writes records and prints one JSON line per record once the broker has it:
  {"i": 0, "partition": 0, "offset": 0}
  kinds:
    traces  ExportTraceServiceRequest (opentelemetry-proto) with one span named "r<i>",
            trace id 0x..<i+1>, span id <i+1>, attribute i=<i>
    events  a JSON order event {"order_id": i, "aggregator": ..., "amount": ..., ...}
    garbage bytes that are no OTLP and no JSON
  Record i goes to partition i % --partitions. --rate spreads the records over time.

committed: prints the group's committed offset per partition as JSON {"0": 12, ...}
  (-1 when nothing is committed).

usage:
  kafka_client.py produce --broker H:P --topic T --kind traces --count N [--start S]
                  [--partitions P] [--rate R] [--header k=v ...]
  kafka_client.py committed --broker H:P --group G --topic T --partitions P
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def trace_record(i):
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="kafka-producer"))
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "kafka_client.py"
    span = ss.spans.add()
    span.trace_id = (i + 1).to_bytes(16, "big")
    span.span_id = (i + 1).to_bytes(8, "big")
    span.name = f"r{i}"
    span.start_time_unix_nano = 1_700_000_000_000_000_000 + i
    span.end_time_unix_nano = 1_700_000_000_000_000_000 + i + 1000
    span.attributes.append(KeyValue(key="i", value=AnyValue(int_value=i)))
    return request.SerializeToString()


def event_record(i):
    event = {
        "order_id": i,
        "aggregator": ["swiggy", "zomato"][i % 2],
        "amount": 12.5 + i,
        "status": "rejected" if i % 5 == 0 else "accepted",
        "items": ["dosa", "idli"],
        "customer": {"city": "Bengaluru", "new": i % 3 == 0},
    }
    return json.dumps(event).encode()


def produce(args):
    producer = Producer({"bootstrap.servers": args.broker, "linger.ms": 5})
    headers = [tuple(h.split("=", 1)) for h in args.header]
    make = {"traces": trace_record, "events": event_record, "garbage": lambda i: b"\x00\xffgarbage\x17"}[args.kind]
    failures = []

    def delivered(err, msg, i):
        if err is not None:
            failures.append(f"record {i}: {err}")
            return
        print(json.dumps({"i": i, "partition": msg.partition(), "offset": msg.offset()}), flush=True)

    pause = 1.0 / args.rate if args.rate > 0 else 0.0
    for i in range(args.start, args.start + args.count):
        producer.produce(
            args.topic,
            value=make(i),
            partition=i % args.partitions,
            headers=headers,
            on_delivery=lambda err, msg, i=i: delivered(err, msg, i),
        )
        producer.poll(0)
        if pause:
            time.sleep(pause)
    left = producer.flush(30)
    if left or failures:
        print(f"{left} records undelivered; {failures[:5]}", file=sys.stderr)
        return 1
    return 0


def committed(args):
    consumer = Consumer({"bootstrap.servers": args.broker, "group.id": args.group})
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    offsets = consumer.committed(partitions, timeout=20)
    consumer.close()
    print(json.dumps({str(tp.partition): tp.offset for tp in offsets}))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--broker", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--kind", choices=["traces", "events", "garbage"], required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--header", action="append", default=[])
    c = sub.add_parser("committed")
    c.add_argument("--broker", required=True)
    c.add_argument("--group", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partitions", type=int, required=True)
    args = parser.parse_args()
    return produce(args) if args.command == "produce" else committed(args)


if __name__ == "__main__":
    sys.exit(main())
