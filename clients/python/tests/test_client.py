import json
import queue
import tempfile
import threading
import time
import unittest
from unittest import mock

import support
from ocirpc import Client, IncompleteBatch, InvalidParams, NotFound, OcirpcError, RPCError, ServerDied, Timeout
from ocirpc import client as client_module


def setUpModule():
    support.start()


def tearDownModule():
    support.stop()


def in_flight_reaches(client, count, within=10.0):
    """Whether the server's count of requests in flight comes to `count`
    within `within` seconds: cancelling takes a moment, longer on a loaded
    machine."""
    deadline = time.monotonic() + within
    while client.stats()["inFlight"] != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class HeldAfterTheEnd(queue.Queue):
    """A stream's queue whose putter, the client's reader thread, is held
    just after it queues the stream's end, as a thread switch (or another
    core) may hold it: the consumer must then find the response in place,
    not take the end for a timeout."""

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        if item is client_module._DONE:
            time.sleep(0.3)


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.f = support.fixtures
        self.client = Client(binary=support.BINARY, timeout=30)

    def tearDown(self):
        self.client.close()

    def test_image_manifest_returns_the_builtin_shape(self):
        manifest = self.client.image_manifest(self.f["good"])
        self.assertEqual(manifest["schemaVersion"], 2)
        self.assertEqual(manifest["annotations"], {"v": "1"})
        self.assertEqual(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
        self.assertEqual(set(manifest["config"]), {"mediaType", "size", "digest", "data", "urls", "annotations",
                                                   "artifactType"})

    def test_errors_carry_code_reason_and_ref(self):
        with self.assertRaises(RPCError) as caught:
            self.client.image_manifest(self.f["missing"])
        self.assertEqual(caught.exception.code, -32001)
        self.assertEqual(caught.exception.reason, "manifest_unknown")
        self.assertEqual(caught.exception.ref, self.f["missing"])
        with self.assertRaises(RPCError) as caught:
            self.client.descriptor("Not A Ref")
        self.assertEqual(caught.exception.reason, "invalid_reference")

    def test_errors_are_raised_as_the_class_of_their_code(self):
        with self.assertRaises(NotFound) as caught:
            self.client.image_manifest(self.f["missing"])
        self.assertIsInstance(caught.exception, RPCError)
        self.assertIsInstance(caught.exception, OcirpcError)
        self.assertFalse(caught.exception.retryable)
        with self.assertRaises(InvalidParams):
            self.client.descriptor("Not A Ref")

    def test_parsed_blob_keeps_big_integers_exact(self):
        self.assertEqual(self.client.parsed_blob(self.f["jsonBlob"]), {"n": 12345678901234567890})

    def test_image_files_reads_yaml_from_the_layers(self):
        ref = self.f["good"].rsplit(":", 1)[0] + "@" + self.f["goodDigest"]
        self.assertEqual(self.client.image_files(ref, ["etc/policy"]),
                         {"etc/policy/rules.yaml": {"minimum": 3, "enabled": True}})

    def test_batch_returns_successes_and_streams_each_ref_once(self):
        refs = [self.f["good"], self.f["bad"], self.f["missing"], self.f["good"]]
        self.assertEqual(set(self.client.image_manifests(refs)), {self.f["good"], self.f["bad"]})
        streamed = list(self.client.iter_image_manifests(refs))
        self.assertEqual(sorted(ref for ref, _ in streamed), sorted({*refs}))
        outcomes = dict(streamed)
        self.assertEqual(outcomes[self.f["bad"]]["annotations"], {"v": "2"})
        self.assertIsInstance(outcomes[self.f["missing"]], RPCError)
        self.assertEqual(outcomes[self.f["missing"]].code, -32001)

    def test_a_timed_out_call_is_cancelled_on_the_server(self):
        with self.assertRaises(TimeoutError) as caught:
            self.client.image_manifest(support.BLACKHOLE, timeout=0.5)
        self.assertIsInstance(caught.exception, Timeout)
        self.assertIsInstance(caught.exception, OcirpcError)
        self.assertTrue(in_flight_reaches(self.client, 0))
        self.assertEqual(self.client.descriptor(self.f["good"])["digest"], self.f["goodDigest"])

    def test_leaving_a_stream_early_cancels_the_batch_on_the_server(self):
        stream = self.client.iter_image_manifests([self.f["good"], support.BLACKHOLE])
        for ref, _ in stream:
            self.assertEqual(ref, self.f["good"])
            break
        stream.close()
        self.assertTrue(in_flight_reaches(self.client, 0))

    def test_a_stream_that_stalls_past_its_timeout_raises_and_is_cancelled(self):
        with self.assertRaises(Timeout):
            for _ in self.client.iter_image_manifests([support.BLACKHOLE], timeout=0.5):
                pass
        self.assertTrue(in_flight_reaches(self.client, 0))

    def test_a_streams_end_is_read_with_its_response_however_the_threads_interleave(self):
        with mock.patch.object(client_module.queue, "Queue", HeldAfterTheEnd):
            streamed = list(self.client.iter_image_manifests([self.f["good"]]))
        self.assertEqual([ref for ref, _ in streamed], [self.f["good"]])
        self.assertEqual(streamed[0][1]["annotations"], {"v": "1"})

    def test_a_server_that_dies_during_a_stream_raises_server_died_however_the_threads_interleave(self):
        threading.Timer(0.5, self.client._process.kill).start()
        with mock.patch.object(client_module.queue, "Queue", HeldAfterTheEnd):
            with self.assertRaises(ServerDied):
                for _ in self.client.iter_image_manifests([support.BLACKHOLE]):
                    pass

    def test_answers_are_read_in_chunks_not_a_byte_at_a_time(self):
        # The contract is 30 KB of JSON. Read a line at a time from the
        # unbuffered pipe, it took one read(2) a byte (a 2.7 MB batch answer
        # took 1.4 s to read); /proc counts this process's read calls.
        def reads():
            with open("/proc/self/io") as io_counts:
                return next(int(line.split()[1]) for line in io_counts if line.startswith("syscr:"))

        before = reads()
        answered = sum(len(json.dumps(self.client.call("rpc.discover", None))) for _ in range(5))
        self.assertGreater(answered, 100_000)
        self.assertLess(reads() - before, answered // 100)

    def test_clear_cache_empties_the_memory_cache(self):
        self.client.image_manifest(self.f["good"])
        self.assertGreater(self.client.stats()["cacheBytes"]["used"], 0)
        self.client.clear_cache()
        self.assertEqual(self.client.stats()["cacheBytes"]["used"], 0)

    def test_threads_share_one_client(self):
        results, errors = [], []

        def work():
            try:
                results.append(self.client.descriptor(self.f["good"])["digest"])
            except Exception as error:  # recorded for the assertion below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(results, [self.f["goodDigest"]] * 16)


class ServerFaultTests(unittest.TestCase):
    def test_a_server_cut_off_mid_answer_raises_server_died(self):
        with tempfile.TemporaryDirectory() as directory:
            client = Client(binary=support.server_cut_off_mid_answer(directory))
            with self.assertRaises(ServerDied) as caught:
                client.stats(timeout=10)
            self.assertEqual(caught.exception.returncode, 9)
            client.close()

    def test_messages_the_reader_cannot_take_are_passed_over(self):
        with tempfile.TemporaryDirectory() as directory:
            client = Client(binary=support.server_writing_strange_messages_first(directory))
            self.assertEqual(client.stats(timeout=10), {"ok": True})
            client.close(timeout=1)

    def test_a_batch_that_ends_without_a_ref_raises_rather_than_leave_it_out(self):
        # Left out, the ref would read as one that failed: a policy that
        # lets failing refs go would pass it.
        with tempfile.TemporaryDirectory() as directory:
            client = Client(binary=support.server_leaving_a_ref_out_of_a_batch(directory), timeout=10)
            seen = []
            with self.assertRaises(IncompleteBatch) as caught:
                for ref, _ in client.iter_image_manifests(["a", "b", "a"]):
                    seen.append(ref)
            self.assertEqual(seen, ["a"])
            self.assertEqual(caught.exception.missing, ["b"])
            client.close(timeout=1)

    def test_a_server_that_dies_raises_with_its_stderr(self):
        client = Client(binary=support.BINARY, args=["--cache-bytes", "lots"])
        with self.assertRaises(ServerDied) as caught:
            client.stats()
        self.assertEqual(caught.exception.returncode, 2)
        self.assertIn("--cache-bytes", caught.exception.stderr_tail)
        client.close()


if __name__ == "__main__":
    unittest.main()
