import asyncio
import unittest

import support
from ocirpc import AsyncClient, RPCError


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

    async def test_cancelling_a_task_cancels_the_request(self):
        task = asyncio.create_task(self.client.image_manifest(support.BLACKHOLE))
        await asyncio.sleep(0.3)
        self.assertEqual((await self.client.stats())["inFlight"], 1)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        self.assertEqual((await self.client.stats())["inFlight"], 0)


if __name__ == "__main__":
    unittest.main()
