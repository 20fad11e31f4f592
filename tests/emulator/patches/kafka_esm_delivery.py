"""Kafka event source mappings deliver records: the local broker's records reach the function.

moto has no Kafka event source mappings at all (lambda_esm.py models their API); on AWS
an Enabled mapping polls the topic and invokes the function with batches of records. Here
one poller thread per Enabled Kafka mapping whose source is the local broker (an MSK
cluster of the emulator, whose bootstrap brokers are the local broker, or self-managed
servers naming its address) reads the topic with kafka-python and invokes the function
through lambda_invoke.py with the event AWS sends ("Using Lambda with Amazon MSK",
"Using Lambda with self-managed Apache Kafka"):

    {"eventSource": "aws:kafka" | "SelfManagedKafka", "eventSourceArn": <MSK only>,
     "bootstrapServers": "...", "records": {"TOPIC-PARTITION": [{"topic", "partition",
     "offset", "timestamp", "timestampType", "key" (base64, when set), "value" (base64),
     "headers": [{name: [byte, ...]}]}]}}

Batches hold up to BatchSize records, gathered for up to MaximumBatchingWindowInSeconds
(0.5 s when unset, as Lambda's default window for Kafka is 500 ms). StartingPosition
TRIM_HORIZON starts at the earliest offset, LATEST at the end of each partition when the
poller starts. A batch whose invocation fails is retried (every second) until it succeeds,
as Lambda does for Kafka by default; LastProcessingResult says "OK" or "PROBLEM: Function
call failed". Offsets are committed to the mapping's ConsumerGroupId after each batch
(best effort). The mapping's state is read without settling it: a poller starts once a
reader has seen the mapping Enabled (mskctl waits for that).

`EMULATOR_KAFKA_ESM=0` turns delivery off.
"""

import base64
import os
import threading
import time
from typing import Any

from . import kafka_broker, lambda_invoke

_pollers: dict[str, "Poller"] = {}
_lock = threading.Lock()
_manager: threading.Thread | None = None
_stop = threading.Event()


def enabled() -> bool:
    return os.environ.get("EMULATOR_KAFKA_ESM", "1") not in ("0", "false", "no", "off", "")


def _mappings() -> list[tuple[Any, Any]]:
    from moto.awslambda.models import lambda_backends

    from .lambda_esm import KafkaMapping

    out = []
    for regions in list(dict.values(lambda_backends)):
        for backend in list(dict.values(regions)):
            for esm in list(backend._event_source_mappings.values()):
                if isinstance(esm, KafkaMapping):
                    out.append((backend, esm))
    return out


def _local_source(esm: Any) -> dict[str, str] | None:
    """The event's source fields if the mapping reads the local broker, else None."""
    local = kafka_broker.address()
    if not local:
        return None
    if esm.event_source_arn:
        from moto.kafka.models import kafka_backends

        parts = esm.event_source_arn.split(":")
        if len(parts) < 6:
            return None
        try:
            clusters = dict.get(kafka_backends, parts[4], {})
            backend = dict.get(clusters, parts[3]) if clusters else None
        except Exception:
            return None
        if backend is None or esm.event_source_arn not in backend.clusters:
            return None
        return {"eventSource": "aws:kafka", "eventSourceArn": esm.event_source_arn, "bootstrapServers": local}
    servers = (esm.self_managed or {}).get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS", [])
    servers = [s.strip() for item in servers for s in item.split(",")]
    if local in servers:
        return {"eventSource": "SelfManagedKafka", "bootstrapServers": ",".join(servers)}
    return None


def _enabled(esm: Any) -> bool:
    lifecycle = esm.lifecycle
    return lifecycle._pending is None and lifecycle._state == "Enabled"


class Poller:
    def __init__(self, backend: Any, esm: Any, source: dict[str, str]) -> None:
        self.backend, self.esm, self.source = backend, esm, source
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"esm-{esm.uuid}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # a poller must never take the emulator down
            if os.environ.get("EMULATOR_LOG_REQUESTS"):
                import sys

                sys.stderr.write(f"kafka esm {self.esm.uuid}: {error!r}\n")

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=kafka_broker.address(),
            group_id=self.esm.kafka_config.get("ConsumerGroupId"),
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            auto_offset_reset="earliest" if self.esm.starting_position == "TRIM_HORIZON" else "latest",
            consumer_timeout_ms=1000,
            request_timeout_ms=10000,
        )

    def _run(self) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        topic = self.esm.topics[0]
        consumer = None
        positions: dict[Any, int] = {}
        try:
            while not self.stopped.is_set() and not _stop.is_set():
                if consumer is None:
                    consumer = self._consumer()
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    self.stopped.wait(1)
                    continue
                tps = [TopicPartition(topic, p) for p in sorted(partitions)]
                if set(tps) != set(consumer.assignment()):
                    consumer.assign(tps)
                    for tp in tps:
                        if tp in positions:
                            consumer.seek(tp, positions[tp])
                        else:
                            committed = None
                            try:
                                committed = consumer.committed(tp)
                            except Exception:
                                pass
                            if committed is not None:
                                consumer.seek(tp, committed)
                            elif self.esm.starting_position == "TRIM_HORIZON":
                                consumer.seek_to_beginning(tp)
                            else:
                                consumer.seek_to_end(tp)
                            positions[tp] = consumer.position(tp)
                batch = self._gather(consumer)
                if not batch:
                    continue
                while not self.stopped.is_set() and not self._deliver(batch):
                    self.stopped.wait(1)
                if self.stopped.is_set():
                    break
                for tp, records in batch.items():
                    positions[tp] = records[-1].offset + 1
                try:
                    consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in positions.items()})
                except Exception:
                    pass
        finally:
            if consumer is not None:
                consumer.close()

    def _gather(self, consumer: Any) -> dict[Any, list[Any]]:
        """Up to BatchSize records, polled for up to the batching window (at least one poll)."""
        size = int(self.esm.batch_size or 100)
        window = self.esm.max_batching_window
        deadline = time.monotonic() + (0.5 if window is None else float(window))
        batch: dict[Any, list[Any]] = {}
        count, first = 0, True
        while count < size and not self.stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0 and not first:
                break
            first = False
            got = consumer.poll(timeout_ms=max(100, int(left * 1000)), max_records=size - count)
            for tp, records in got.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    def _event(self, batch: dict[Any, list[Any]]) -> dict[str, Any]:
        records: dict[str, list[dict[str, Any]]] = {}
        for tp, items in batch.items():
            out = []
            for r in items:
                record = {
                    "topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp,
                    "timestampType": "LOG_APPEND_TIME" if r.timestamp_type == 1 else "CREATE_TIME",
                    "value": base64.b64encode(r.value or b"").decode(),
                    "headers": [{k: list(v or b"")} for k, v in (r.headers or [])],
                }
                if r.key is not None:
                    record["key"] = base64.b64encode(r.key).decode()
                out.append(record)
            records[f"{tp.topic}-{tp.partition}"] = out
        return {**self.source, "records": records}

    def _deliver(self, batch: dict[Any, list[Any]]) -> bool:
        try:
            fn = self.backend.get_function(self.esm.function_arn)
        except Exception:
            return False
        if not lambda_invoke.runs_here(fn):
            self.esm.last_result = "PROBLEM: Function call failed"
            return False
        try:
            lambda_invoke.check_invocable(fn)
        except Exception:
            return False
        import uuid

        outcome, _, _ = lambda_invoke.run(fn, self._event(batch), str(uuid.uuid4()))
        if "error" in outcome:
            self.esm.last_result = "PROBLEM: Function call failed"
            return False
        self.esm.last_result = "OK"
        return True


def _manage() -> None:
    while not _stop.wait(0.3):
        try:
            live = {}
            for backend, esm in _mappings():
                if not _enabled(esm):
                    continue
                source = _local_source(esm)
                if source is not None:
                    live[esm.uuid] = (backend, esm, source)
            with _lock:
                for uuid_ in [u for u in _pollers if u not in live or _pollers[u].esm is not live[u][1]]:
                    _pollers.pop(uuid_).stop()
                for uuid_, (backend, esm, source) in live.items():
                    if uuid_ not in _pollers:
                        _pollers[uuid_] = Poller(backend, esm, source)
        except Exception:
            pass


def start() -> None:
    """Starts the thread that keeps one poller per Enabled Kafka mapping of the local broker."""
    global _manager
    if not enabled() or _manager is not None or not kafka_broker.address():
        return
    _manager = threading.Thread(target=_manage, name="kafka-esm", daemon=True)
    _manager.start()


def stop() -> None:
    _stop.set()
    with _lock:
        for poller in _pollers.values():
            poller.stop()
        _pollers.clear()
