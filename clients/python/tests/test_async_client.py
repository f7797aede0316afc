import asyncio
import tempfile
import unittest

import support
from ocirpc import AsyncClient, IncompleteBatch, NotFound, RPCError, ServerDied, Timeout


def setUpModule():
    support.start()


def tearDownModule():
    support.stop()


class AsyncClientTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.f = support.fixtures
        self.client = await AsyncClient.start(binary=support.BINARY, timeout=30)

    async def asyncTearDown(self):
        await self.client.close()

    async def test_concurrent_calls(self):
        manifests = await asyncio.gather(*(self.client.image_manifest(self.f["good"]) for _ in range(20)))
        self.assertTrue(all(m["annotations"] == {"v": "1"} for m in manifests))

    async def test_errors_are_raised(self):
        with self.assertRaises(RPCError) as caught:
            await self.client.image_index(self.f["good"])
        self.assertEqual(caught.exception.reason, "unexpected_media_type")

    async def test_streamed_batch(self):
        seen = {}
        async for ref, outcome in self.client.iter_image_manifests([self.f["good"], self.f["missing"]]):
            seen[ref] = outcome
        self.assertEqual(seen[self.f["good"]]["schemaVersion"], 2)
        self.assertIsInstance(seen[self.f["missing"]], RPCError)

    async def in_flight_reaches(self, count, within=10.0):
        """Whether the server's count of requests in flight comes to `count`
        within `within` seconds: cancelling takes a moment, longer on a
        loaded machine."""
        deadline = asyncio.get_running_loop().time() + within
        while (await self.client.stats())["inFlight"] != count:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def in_flight_drops_to_zero(self):
        return await self.in_flight_reaches(0)

    async def test_errors_are_raised_as_the_class_of_their_code(self):
        with self.assertRaises(NotFound):
            await self.client.image_manifest(self.f["missing"])

    async def test_a_timed_out_call_raises_timeout_and_is_cancelled(self):
        with self.assertRaises(TimeoutError) as caught:
            await self.client.image_manifest(support.BLACKHOLE, timeout=0.5)
        self.assertIsInstance(caught.exception, Timeout)
        self.assertTrue(await self.in_flight_drops_to_zero())

    async def test_leaving_a_stream_early_cancels_the_batch_on_the_server(self):
        stream = self.client.iter_image_manifests([self.f["good"], support.BLACKHOLE])
        async for ref, _ in stream:
            self.assertEqual(ref, self.f["good"])
            break
        await stream.aclose()
        self.assertTrue(await self.in_flight_drops_to_zero())

    async def test_a_stream_that_stalls_past_its_timeout_raises(self):
        with self.assertRaises(Timeout):
            async for _ in self.client.iter_image_manifests([support.BLACKHOLE], timeout=0.5):
                pass
        self.assertTrue(await self.in_flight_drops_to_zero())

    async def test_clear_cache(self):
        await self.client.image_manifest(self.f["good"])
        self.assertGreater((await self.client.stats())["cacheBytes"]["used"], 0)
        await self.client.clear_cache()
        self.assertEqual((await self.client.stats())["cacheBytes"]["used"], 0)

    async def test_cancelling_a_task_cancels_the_request(self):
        task = asyncio.create_task(self.client.image_manifest(support.BLACKHOLE))
        self.assertTrue(await self.in_flight_reaches(1))
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertTrue(await self.in_flight_drops_to_zero())


class AsyncServerFaultTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_server_cut_off_mid_answer_raises_server_died(self):
        with tempfile.TemporaryDirectory() as directory:
            client = await AsyncClient.start(binary=support.server_cut_off_mid_answer(directory))
            with self.assertRaises(ServerDied) as caught:
                await client.stats(timeout=10)
            self.assertEqual(caught.exception.returncode, 9)
            await client.close()

    async def test_a_batch_that_ends_without_a_ref_raises_rather_than_leave_it_out(self):
        with tempfile.TemporaryDirectory() as directory:
            client = await AsyncClient.start(binary=support.server_leaving_a_ref_out_of_a_batch(directory), timeout=10)
            seen = []
            with self.assertRaises(IncompleteBatch) as caught:
                async for ref, _ in client.iter_image_manifests(["a", "b", "a"]):
                    seen.append(ref)
            self.assertEqual(seen, ["a"])
            self.assertEqual(caught.exception.missing, ["b"])
            await client.close(timeout=1)

    async def test_messages_the_reader_cannot_take_are_passed_over(self):
        with tempfile.TemporaryDirectory() as directory:
            client = await AsyncClient.start(binary=support.server_writing_strange_messages_first(directory))
            self.assertEqual(await client.stats(timeout=10), {"ok": True})
            await client.close(timeout=1)


if __name__ == "__main__":
    unittest.main()
