"""Kafka record processor for the mskctl example stacks.

Invoked either by an EventBridge Pipe (the event is a list of Kafka records) or directly by a
Lambda event source mapping on MSK or self-managed Kafka (the event is an object whose
"records" maps "topic-partition" to a list of records). Each record's base64 ``key`` and
``value`` are decoded (JSON when they parse as JSON, text otherwise) and logged with their
topic, partition and offset. Business logic goes in ``handle_record``.

A malformed event raises ``ValueError`` so that the invocation fails and the caller's retry
and dead-letter settings apply, instead of records being dropped silently.
"""

import base64
import binascii
import json
import logging
import os

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


class MalformedEvent(ValueError):
    """The event is neither a pipe batch nor an event-source-mapping batch."""


def decode_payload(encoded):
    """Decode a base64 key or value: parsed JSON when it is JSON, else text (or None)."""
    if encoded is None:
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, TypeError) as err:
        raise MalformedEvent(f"payload is not valid base64: {err}") from err
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def records_of(event):
    """Flatten either event shape into a list of (topic, record) pairs."""
    if isinstance(event, list):  # EventBridge Pipe: the batch itself
        return [(_record(r).get("topic"), r) for r in event]
    if isinstance(event, dict) and isinstance(event.get("records"), dict):
        pairs = []
        for topic_partition, batch in event["records"].items():
            if not isinstance(batch, list):
                raise MalformedEvent(f"records[{topic_partition!r}] is not a list")
            # "topic-partition": the topic itself may contain dashes, the partition cannot.
            default_topic = topic_partition.rsplit("-", 1)[0]
            pairs.extend((_record(r).get("topic", default_topic), r) for r in batch)
        return pairs
    raise MalformedEvent(
        "expected a list of Kafka records (EventBridge Pipe) or an object with "
        f"'records' (event source mapping), got {type(event).__name__}"
    )


def _record(record):
    if not isinstance(record, dict):
        raise MalformedEvent(f"a Kafka record must be an object, got {type(record).__name__}")
    return record


def handle_record(topic, record):
    """Decode and log one record; returns what was understood of it."""
    for field in ("partition", "offset"):
        if field not in record:
            raise MalformedEvent(f"record from topic {topic!r} has no {field!r}")
    processed = {
        "topic": topic,
        "partition": record["partition"],
        "offset": record["offset"],
        "timestamp": record.get("timestamp"),
        "key": decode_payload(record.get("key")),
        "value": decode_payload(record.get("value")),
    }
    logger.info(
        "topic=%s partition=%s offset=%s key=%s value=%s",
        topic,
        processed["partition"],
        processed["offset"],
        json.dumps(processed["key"], default=str),
        json.dumps(processed["value"], default=str),
    )
    return processed


def lambda_handler(event, context):
    """Entry point: process every record of the batch and return a summary."""
    pairs = records_of(event)
    processed = [handle_record(topic, record) for topic, record in pairs]
    topics = sorted({p["topic"] for p in processed if p["topic"] is not None})
    logger.info("processed %d record(s) from %s", len(processed), ", ".join(topics) or "no topic")
    return {"processed": len(processed), "topics": topics}
