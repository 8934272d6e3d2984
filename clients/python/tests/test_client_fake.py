"""NodeClient and RouterClient against in-process fake servers (grpcio's own server): chunking,
checksum verification, retries on UNAVAILABLE only, deadlines, and TLS / mutual TLS / bearer token
on the client side. The real binaries are exercised by test_round_trip and test_security."""

from __future__ import annotations

import concurrent.futures
import tempfile
import threading
import unittest

import grpc
import xxhash

import pki
from strata.v1 import cachenode_pb2, cachenode_pb2_grpc, router_pb2, router_pb2_grpc
from strata_client import NodeClient, RouterClient, StrataError, Tier, hash_chain

NS = "llama3-8b/bf16/b16"


class FakeNode(cachenode_pb2_grpc.CacheNodeServicer):
    """Stores blocks in a dict. `fail_with` codes are returned, in order, by the next calls;
    `corrupt_checksum` / `extra_bytes` make Get send a block that does not verify."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[int, bytes], bytes] = {}
        self.fail_with: list[grpc.StatusCode] = []
        self.corrupt_checksum = False
        self.extra_bytes = False
        self.calls = 0
        self.put_chunk_sizes: list[int] = []
        self.time_remaining: list[float] = []
        self.metadata: list[dict] = []
        self._lock = threading.Lock()

    def _enter(self, context) -> None:
        with self._lock:
            self.calls += 1
            self.time_remaining.append(context.time_remaining())
            self.metadata.append(dict(context.invocation_metadata()))
            code = self.fail_with.pop(0) if self.fail_with else None
        if code is not None:
            context.abort(code, f"fake failure {code.name}")

    def Put(self, request_iterator, context):
        self._enter(context)
        results = []
        header, data = None, bytearray()

        def commit():
            ok = len(data) == header.size_bytes and xxhash.xxh3_64_intdigest(bytes(data)) == header.checksum
            if ok:
                self.blocks[(header.key.namespace_id, header.key.chain_hash)] = bytes(data)
            results.append(
                cachenode_pb2.PutBlockResult(
                    chain_hash=header.key.chain_hash,
                    code=0 if ok else grpc.StatusCode.DATA_LOSS.value[0],
                    tier=cachenode_pb2.TIER_DRAM if ok else cachenode_pb2.TIER_UNSPECIFIED,
                )
            )

        for r in request_iterator:
            if r.WhichOneof("item") == "header":
                if header is not None:
                    commit()
                header, data = r.header, bytearray()
            else:
                self.put_chunk_sizes.append(len(r.chunk))
                data += r.chunk
        if header is not None:
            commit()
        return cachenode_pb2.PutResponse(results=results)

    def Get(self, request, context):
        self._enter(context)
        for i, h in enumerate(request.chain_hashes):
            payload = self.blocks.get((request.namespace_id, h))
            if payload is None:
                yield cachenode_pb2.GetResponse(
                    header=cachenode_pb2.GetBlockHeader(index=i, found=False, miss_code=5)
                )
                if request.stop_at_first_miss:
                    return
                continue
            checksum = xxhash.xxh3_64_intdigest(payload) ^ (1 if self.corrupt_checksum else 0)
            yield cachenode_pb2.GetResponse(
                header=cachenode_pb2.GetBlockHeader(
                    index=i,
                    found=True,
                    tier=cachenode_pb2.TIER_DRAM,
                    size_bytes=len(payload),
                    checksum=checksum,
                )
            )
            body = payload + (b"!" if self.extra_bytes else b"")
            step = request.max_chunk_bytes or len(body)
            for off in range(0, len(body), step):
                yield cachenode_pb2.GetResponse(chunk=body[off : off + step])

    def Lookup(self, request, context):
        self._enter(context)
        n = 0
        for h in request.chain_hashes:
            if (request.namespace_id, h) not in self.blocks:
                break
            n += 1
        return cachenode_pb2.LookupResponse(
            matched_blocks=n, dram_blocks=n, tiers=[cachenode_pb2.TIER_DRAM] * n
        )


class FakeRouter(router_pb2_grpc.RouterServicer):
    def __init__(self) -> None:
        self.metadata: list[dict] = []
        self.routes: list[router_pb2.RouteRequest] = []

    def ListNodes(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return router_pb2.ListNodesResponse(
            nodes=[router_pb2.NodeInfo(node_id="n0", endpoint="127.0.0.1:1", synced=True)]
        )

    def Route(self, request, context):
        self.routes.append(request)
        return router_pb2.RouteResponse(
            node_id="n0",
            endpoint="127.0.0.1:1",
            matched_blocks=len(request.chain_hashes),
            total_blocks=len(request.chain_hashes),
            decision_id=42,
            policy="locality",
            peers=[router_pb2.PeerSource(node_id="n1", from_block=1, blocks=2, tier=cachenode_pb2.TIER_SSD)],
        )


def _serve(servicer_adder, servicer, credentials=None):
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    servicer_adder(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, f"127.0.0.1:{port}"


class NodeClientFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeNode()
        self.server, self.address = _serve(cachenode_pb2_grpc.add_CacheNodeServicer_to_server, self.fake)
        self.addCleanup(self.server.stop, None)
        self.chain = hash_chain(NS, list(range(48)), 16)

    def client(self, **kwargs) -> NodeClient:
        c = NodeClient(self.address, **kwargs)
        self.addCleanup(c.close)
        return c

    def test_put_streams_chunks_and_get_returns_the_same_bytes(self) -> None:
        c = self.client(chunk_bytes=64 << 10)
        payloads = [bytes([i]) * (150 << 10) for i in range(2)] + [b"x"]
        results = c.put(NS, self.chain, payloads)
        self.assertTrue(all(r.ok for r in results), results)
        self.assertEqual([r.tier for r in results], [Tier.DRAM] * 3)
        self.assertLessEqual(max(self.fake.put_chunk_sizes), 64 << 10)
        self.assertGreater(len(self.fake.put_chunk_sizes), 3)  # big blocks went in several chunks
        blocks = c.get(NS, self.chain)
        self.assertEqual([b.payload for b in blocks], payloads)

    def test_get_of_a_block_failing_its_checksum_is_data_loss(self) -> None:
        c = self.client()
        c.put(NS, self.chain[:1], [b"payload"])
        self.fake.corrupt_checksum = True
        with self.assertRaises(StrataError) as e:
            c.get(NS, self.chain[:1])
        self.assertEqual(e.exception.code, grpc.StatusCode.DATA_LOSS)

    def test_get_of_a_block_longer_than_its_size_is_data_loss(self) -> None:
        c = self.client()
        c.put(NS, self.chain[:1], [b"payload"])
        self.fake.extra_bytes = True
        with self.assertRaises(StrataError) as e:
            c.get(NS, self.chain[:1])
        self.assertEqual(e.exception.code, grpc.StatusCode.DATA_LOSS)

    def test_misses_are_reported_per_block(self) -> None:
        c = self.client()
        c.put(NS, self.chain[:1], [b"a"])
        blocks = c.get(NS, self.chain)
        self.assertEqual([b.found for b in blocks], [True, False, False])
        self.assertEqual(blocks[1].miss, grpc.StatusCode.NOT_FOUND)
        self.assertIsNone(blocks[1].payload)
        self.assertEqual(len(c.get(NS, self.chain, stop_at_first_miss=True)), 2)

    def test_unavailable_is_retried_and_then_succeeds(self) -> None:
        c = self.client(max_attempts=3)
        self.fake.fail_with = [grpc.StatusCode.UNAVAILABLE]
        self.assertEqual(c.lookup(NS, self.chain).matched_blocks, 0)
        self.assertEqual(self.fake.calls, 2)

    def test_unavailable_is_raised_after_max_attempts(self) -> None:
        c = self.client(max_attempts=3)
        self.fake.fail_with = [grpc.StatusCode.UNAVAILABLE] * 5
        with self.assertRaises(StrataError) as e:
            c.lookup(NS, self.chain)
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.fake.calls, 3)

    def test_other_codes_are_not_retried(self) -> None:
        c = self.client(max_attempts=3)
        self.fake.fail_with = [grpc.StatusCode.RESOURCE_EXHAUSTED]
        with self.assertRaises(StrataError) as e:
            c.put(NS, self.chain[:1], [b"a"])
        self.assertEqual(e.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(self.fake.calls, 1)

    def test_every_call_carries_a_deadline_within_the_budget(self) -> None:
        c = self.client(deadline_s=7.0)
        c.put(NS, self.chain[:1], [b"a"])
        c.get(NS, self.chain[:1])
        c.lookup(NS, self.chain)
        self.assertEqual(len(self.fake.time_remaining), 3)
        for left in self.fake.time_remaining:
            self.assertIsNotNone(left)
            self.assertGreater(left, 0)
            # gRPC rounds the deadline it propagates; what matters is that there is one, of about
            # the budget (no deadline reads as None or as years).
            self.assertLess(left, 8.0)

    def test_bad_input_is_rejected_before_any_rpc(self) -> None:
        c = self.client()
        cases = [
            lambda: c.put(NS, self.chain, [b"a"]),  # lengths differ
            lambda: c.put(NS, [b"short"], [b"a"]),  # hash not 32 bytes
            lambda: c.get("bad name", self.chain),
            lambda: c.lookup(NS, [b"x" * 31]),
        ]
        for call in cases:
            with self.assertRaises(StrataError) as e:
                call()
            self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.fake.calls, 0)

    def test_token_without_tls_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            NodeClient(self.address, token="secret")
        with self.assertRaises(ValueError):
            NodeClient(self.address, ca_file="/nonexistent/ca.pem")


class RouterClientFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeRouter()
        self.server, self.address = _serve(router_pb2_grpc.add_RouterServicer_to_server, self.fake)
        self.addCleanup(self.server.stop, None)

    def test_route_sends_the_chain_and_maps_the_answer(self) -> None:
        chain = hash_chain(NS, list(range(32)), 16)
        with RouterClient(self.address) as c:
            r = c.route(NS, chain_hashes=chain, session_key="s1", policy="locality")
        sent = self.fake.routes[0]
        self.assertEqual(getattr(sent, "namespace"), NS)
        self.assertEqual(list(sent.chain_hashes), chain)
        self.assertEqual(sent.session_key, "s1")
        self.assertEqual((r.node_id, r.decision_id, r.matched_blocks), ("n0", 42, 2))
        self.assertEqual(r.peers[0].tier, Tier.SSD)

    def test_route_needs_exactly_one_of_hashes_and_tokens(self) -> None:
        with RouterClient(self.address) as c:
            for kwargs in ({}, {"chain_hashes": [b"x" * 32], "token_ids": [1]}):
                with self.assertRaises(StrataError) as e:
                    c.route(NS, **kwargs)
                self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.fake.routes, [])


@unittest.skipUnless(pki.have_openssl(), "the openssl command line is needed to make certificates")
class TlsClientFakeTest(unittest.TestCase):
    """The client side of TLS, mutual TLS and bearer tokens, against a fake router that requires a
    client certificate."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.TemporaryDirectory(prefix="strata-py-tls-")
        cls.pki = pki.make_pki(cls.dir.name)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dir.cleanup()

    def setUp(self) -> None:
        def read(path: str) -> bytes:
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_server_credentials(
            [(read(self.pki.server_key), read(self.pki.server_cert))],
            root_certificates=read(self.pki.ca),
            require_client_auth=True,
        )
        self.fake = FakeRouter()
        self.server, self.address = _serve(router_pb2_grpc.add_RouterServicer_to_server, self.fake, creds)
        self.addCleanup(self.server.stop, None)

    def test_mutual_tls_with_token_sends_bearer_metadata(self) -> None:
        with RouterClient(
            self.address,
            tls=True,
            ca_file=self.pki.ca,
            cert_file=self.pki.client_cert,
            key_file=self.pki.client_key,
            token="route-token-1",
        ) as c:
            self.assertEqual([n.node_id for n in c.list_nodes()], ["n0"])
        self.assertEqual(self.fake.metadata[0].get("authorization"), "Bearer route-token-1")

    def test_localhost_name_verifies_too(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        with RouterClient(
            f"127.0.0.1:{port}",
            tls=True,
            ca_file=self.pki.ca,
            cert_file=self.pki.client_cert,
            key_file=self.pki.client_key,
            server_name="localhost",
        ) as c:
            self.assertEqual(len(c.list_nodes()), 1)
        self.assertNotIn("authorization", self.fake.metadata[0])

    def test_client_certificate_from_another_ca_is_refused(self) -> None:
        with RouterClient(
            self.address,
            tls=True,
            ca_file=self.pki.ca,
            cert_file=self.pki.rogue_client_cert,
            key_file=self.pki.rogue_client_key,
            max_attempts=1,
        ) as c:
            with self.assertRaises(StrataError) as e:
                c.list_nodes()
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.fake.metadata, [])

    def test_server_not_signed_by_the_given_ca_is_refused(self) -> None:
        # The rogue CA did not sign the server's certificate: the client must not talk to it.
        with RouterClient(
            self.address,
            tls=True,
            ca_file=self.pki.rogue_client_cert.replace("rogue-client.pem", "rogue-ca.pem"),
            cert_file=self.pki.client_cert,
            key_file=self.pki.client_key,
            max_attempts=1,
        ) as c:
            with self.assertRaises(StrataError) as e:
                c.list_nodes()
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.fake.metadata, [])


if __name__ == "__main__":
    unittest.main()
