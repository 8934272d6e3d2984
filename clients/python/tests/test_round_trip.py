"""The Python client against a real strata-router and strata-cachenode on loopback (plaintext):
put/get/lookup round trips, routing a chain the node holds (the router hashes token ids in C++,
the client in Python: they must agree), reporting outcomes, and the example frontend loop.

Waiting is by polling the router with a deadline (what an operator would do), never by sleeping
for a fixed time."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import unittest

import grpc

from strata_client import NodeClient, RouterClient, StrataError, Tier, hash_chain
from strata_processes import (
    ServerProcess,
    cachenode_binary,
    closed_port,
    eventually,
    plaintext_flags,
    router_binary,
)

NS = "llama3-8b/bf16/b16"
NODE_ID = "py-node-0"
BLOCK_TOKENS = 16


def random_tokens(seed: int, blocks: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(128256) for _ in range(blocks * BLOCK_TOKENS)]


class RoundTripTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.TemporaryDirectory(prefix="strata-py-rt-")
        cls.router = ServerProcess(router_binary())
        cls.node = ServerProcess(cachenode_binary())
        try:
            cls.router_addr = cls.router.start(
                ["--node-ttl", "3s", *plaintext_flags(router_binary())]
            )
            cls.node_addr = cls.node.start(
                [
                    "--data-dir", cls.dir.name,
                    "--dram-bytes", "64MiB",
                    "--ssd-bytes", "0",
                    "--namespaces", f"default,{NS}",
                    "--router", cls.router_addr,
                    "--node-id", NODE_ID,
                    "--heartbeat-interval", "100ms",
                    *plaintext_flags(cachenode_binary()),
                ]
            )
        except Exception:
            cls._stop()
            raise
        cls.router_client = RouterClient(cls.router_addr, deadline_s=10.0)
        cls.node_client = NodeClient(cls.node_addr)

        def synced() -> bool:
            return any(n.node_id == NODE_ID and n.synced for n in cls.router_client.list_nodes())

        if not eventually(synced):
            cls._stop()
            raise AssertionError(f"node never synced at the router: {cls.router.stderr_text()}")

    @classmethod
    def _stop(cls) -> None:
        cls.node.close()
        cls.router.close()
        cls.dir.cleanup()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.router_client.close()
        cls.node_client.close()
        cls._stop()

    def test_put_get_lookup_round_trip_bytes_equal(self) -> None:
        chain = hash_chain(NS, random_tokens(1, 4), BLOCK_TOKENS)
        # Sizes around the 1 MiB chunk: one byte, several chunks, an exact multiple, odd.
        payloads = [b"\x01", os.urandom((2 << 20) + 3), os.urandom(1 << 20), os.urandom(77777)]
        results = self.node_client.put(NS, chain, payloads)
        self.assertEqual([r.ok for r in results], [True] * 4, results)
        self.assertEqual([r.chain_hash for r in results], chain)
        self.assertTrue(all(r.tier == Tier.DRAM for r in results), results)

        blocks = self.node_client.get(NS, chain)
        self.assertEqual([b.index for b in blocks], [0, 1, 2, 3])
        self.assertTrue(all(b.found for b in blocks))
        self.assertEqual([b.payload for b in blocks], payloads)

        found = self.node_client.lookup(NS, chain)
        self.assertEqual(found.matched_blocks, 4)
        self.assertEqual(found.dram_blocks, 4)
        self.assertEqual(found.tiers, [Tier.DRAM] * 4)

    def test_blocks_never_put_are_misses(self) -> None:
        chain = hash_chain(NS, random_tokens(2, 3), BLOCK_TOKENS)
        self.node_client.put(NS, chain[:1], [b"first block only"])
        blocks = self.node_client.get(NS, chain)
        self.assertEqual([b.found for b in blocks], [True, False, False])
        self.assertEqual(blocks[1].miss, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(len(self.node_client.get(NS, chain, stop_at_first_miss=True)), 2)
        self.assertEqual(self.node_client.lookup(NS, chain).matched_blocks, 1)
        # The same hashes in another namespace are other blocks.
        self.assertFalse(self.node_client.get("default", chain[:1])[0].found)

    def test_registered_namespace_accepts_blocks(self) -> None:
        ns_id, created = self.node_client.register_namespace("py/registered/b16")
        self.assertTrue(created)
        self.assertEqual(self.node_client.list_namespaces()["py/registered/b16"], ns_id)
        chain = hash_chain("py/registered/b16", random_tokens(3, 1), BLOCK_TOKENS)
        self.assertTrue(self.node_client.put(ns_id, chain, [b"kv"])[0].ok)
        self.assertEqual(self.node_client.get("py/registered/b16", chain)[0].payload, b"kv")

    def test_route_by_token_ids_finds_blocks_put_with_python_hashes(self) -> None:
        tokens = random_tokens(4, 3)
        chain = hash_chain(NS, tokens, BLOCK_TOKENS)
        self.assertTrue(all(r.ok for r in self.node_client.put(NS, chain, [b"a", b"b", b"c"])))

        # The node's events reach the router asynchronously. The router hashes the token ids with
        # the C++ helper; a match proves its hashes equal the ones Python put.
        def located() -> bool:
            r = self.router_client.locate(NS, token_ids=tokens, block_tokens=BLOCK_TOKENS)
            return any(n.node_id == NODE_ID and n.matched_blocks == 3 for n in r.nodes)

        self.assertTrue(eventually(located), self.router.stderr_text())

        routed = self.router_client.route(
            NS, token_ids=tokens, block_tokens=BLOCK_TOKENS, session_key="s1"
        )
        self.assertEqual(routed.node_id, NODE_ID)
        self.assertEqual(routed.endpoint, self.node_addr)
        self.assertEqual((routed.matched_blocks, routed.total_blocks), (3, 3))
        self.assertEqual(routed.matched.dram, 3)
        self.assertGreater(routed.decision_id, 0)
        self.router_client.report_outcome(
            routed.decision_id, ttft_ms=12.5, prompt_tokens=len(tokens), cached_tokens=len(tokens)
        )

        by_hash = self.router_client.route(NS, chain_hashes=chain)
        self.assertEqual((by_hash.node_id, by_hash.matched_blocks), (NODE_ID, 3))
        self.router_client.report_outcome(by_hash.decision_id, ttft_ms=3.0)

    def test_report_outcome_of_unknown_decision_is_not_found(self) -> None:
        with self.assertRaises(StrataError) as e:
            self.router_client.report_outcome(2**63 + 12345, ttft_ms=1.0)
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_unknown_policy_is_invalid_argument_from_the_router(self) -> None:
        chain = hash_chain(NS, random_tokens(5, 1), BLOCK_TOKENS)
        with self.assertRaises(StrataError) as e:
            self.router_client.route(NS, chain_hashes=chain, policy="no-such-policy")
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_unreachable_router_is_unavailable_after_retries(self) -> None:
        with RouterClient(f"127.0.0.1:{closed_port()}", max_attempts=2, deadline_s=10.0) as c:
            with self.assertRaises(StrataError) as e:
                c.list_nodes()
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)

    def test_example_frontend_loop_reads_back_the_shared_prefix(self) -> None:
        example = os.environ.get(
            "STRATA_FRONTEND_EXAMPLE",
            os.path.join(os.path.dirname(__file__), "..", "examples", "frontend.py"),
        )
        r = subprocess.run(
            [sys.executable, example, "--router", self.router_addr, "--namespace", NS,
             "--requests", "3", "--cache-salt", "example-test"],
            capture_output=True, text=True, timeout=120,
        )
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("request ")]
        self.assertEqual(len(lines), 3, r.stdout)
        # 64 system-prompt tokens = 4 shared blocks, 40 user tokens = 2 more (+ a partial one).
        self.assertIn("read 0, wrote 6", lines[0])
        self.assertIn("read 4, wrote 2", lines[1])
        self.assertIn("read 4, wrote 2", lines[2])


if __name__ == "__main__":
    unittest.main()
