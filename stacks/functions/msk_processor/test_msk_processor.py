"""Unit tests for msk_processor (stdlib only): python3 -m unittest discover stacks/functions/msk_processor"""

import base64
import importlib
import json
import logging
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msk_processor  # noqa: E402


def b64(text):
    return base64.b64encode(text.encode()).decode()


def record(offset, value, key=None, topic=None):
    r = {"partition": 0, "offset": offset, "timestamp": 1700000000000, "value": value}
    if key is not None:
        r["key"] = key
    if topic is not None:
        r["topic"] = topic
    return r


class PipeEvents(unittest.TestCase):
    def test_json_and_text_values_are_decoded(self):
        event = [
            record(1, b64('{"message": "Hello Kafka"}'), key=b64("k1"), topic="test-topic"),
            record(2, b64("plain text"), topic="test-topic"),
        ]
        with self.assertLogs(msk_processor.logger, level="INFO") as logs:
            result = msk_processor.lambda_handler(event, None)
        self.assertEqual(result, {"processed": 2, "topics": ["test-topic"]})
        self.assertIn('topic=test-topic partition=0 offset=1 key="k1" value={"message": "Hello Kafka"}', logs.output[0])
        self.assertIn('value="plain text"', logs.output[1])

    def test_empty_batch(self):
        self.assertEqual(msk_processor.lambda_handler([], None), {"processed": 0, "topics": []})


class EventSourceMappingEvents(unittest.TestCase):
    def test_records_by_topic_partition(self):
        event = {
            "eventSource": "aws:kafka",
            "records": {
                "my-topic-0": [record(5, b64(json.dumps([1, 2])), topic="my-topic")],
                "other-1": [record(7, b64("x"))],  # no topic field: taken from the key
            },
        }
        with self.assertLogs(msk_processor.logger, level="INFO") as logs:
            result = msk_processor.lambda_handler(event, None)
        self.assertEqual(result, {"processed": 2, "topics": ["my-topic", "other"]})
        self.assertIn("topic=my-topic partition=0 offset=5 key=null value=[1, 2]", logs.output[0])

    def test_log_level_comes_from_the_environment(self):
        saved = os.environ.get("LOG_LEVEL")
        os.environ["LOG_LEVEL"] = "warning"
        try:
            importlib.reload(msk_processor)
            self.assertEqual(msk_processor.logger.level, logging.WARNING)
        finally:
            if saved is None:
                del os.environ["LOG_LEVEL"]
            else:
                os.environ["LOG_LEVEL"] = saved
            importlib.reload(msk_processor)


class MalformedEvents(unittest.TestCase):
    def test_rejected_shapes(self):
        for event in ({"foo": 1}, "text", None, {"records": {"t-0": "nope"}}, [42]):
            with self.subTest(event=event), self.assertRaises(ValueError):
                msk_processor.lambda_handler(event, None)

    def test_missing_offset_and_bad_base64(self):
        with self.assertRaises(ValueError):
            msk_processor.lambda_handler([{"partition": 0, "value": b64("x")}], None)
        with self.assertRaises(ValueError):
            msk_processor.lambda_handler([record(1, "not base64!!")], None)


if __name__ == "__main__":
    unittest.main()
