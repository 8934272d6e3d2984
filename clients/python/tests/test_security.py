"""The Python client against a real strata-router and strata-cachenode serving TLS with bearer
tokens (the node also requires client certificates): round trips with the right credentials,
UNAUTHENTICATED without a token or with an unknown one, PERMISSION_DENIED with a token of the
wrong role. Certificates are made here with the openssl command line.

Skipped, with the reason, when the binaries do not know --tls-cert (built before the security
flags landed) or openssl is missing."""

from __future__ import annotations

import os
import random
import tempfile
import unittest

import grpc

import pki
from strata_client import NodeClient, RouterClient, StrataError, hash_chain
from strata_processes import ServerProcess, cachenode_binary, eventually, knows_flag, router_binary

NS = "llama3-8b/bf16/b16"
NODE_ID = "py-tls-node-0"
BLOCK_TOKENS = 16
# The servers take tokens of at least 16 characters.
TOKENS = {
    "route": "route-token-0123456789abcdef",
    "node": "node-token-0123456789abcdef",
    "admin": "admin-token-0123456789abcdef",
}


def _missing_prerequisite() -> str:
    for binary in (router_binary(), cachenode_binary()):
        for flag in ("--tls-cert", "--tls-key", "--auth-tokens-file"):
            if not knows_flag(binary, flag):
                return f"{os.path.basename(binary)} --help does not list {flag} (security flags not built in)"
    if not knows_flag(cachenode_binary(), "--tls-client-ca"):
        return "strata-cachenode --help does not list --tls-client-ca"
    if not pki.have_openssl():
        return "the openssl command line is needed to make certificates"
    return ""


def random_tokens(seed: int, blocks: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(128256) for _ in range(blocks * BLOCK_TOKENS)]


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        reason = _missing_prerequisite()
        if reason:
            raise unittest.SkipTest(reason)
        cls.dir = tempfile.TemporaryDirectory(prefix="strata-py-sec-")
        d = cls.dir.name
        cls.pki = pki.make_pki(d)
        cls.tokens_file = os.path.join(d, "tokens")
        with open(cls.tokens_file, "w") as f:
            f.write("# role token\n")
            for role, token in TOKENS.items():
                f.write(f"{role} {token}\n")
        node_token_file = os.path.join(d, "node-token")
        with open(node_token_file, "w") as f:
            f.write(TOKENS["node"] + "\n")
        os.chmod(cls.tokens_file, 0o600)
        os.chmod(node_token_file, 0o600)

        # The node links to the router over TLS when it knows how; without the link the router
        # round trip is skipped but everything else runs.
        cls.linked = knows_flag(cachenode_binary(), "--router-cacert") and knows_flag(
            cachenode_binary(), "--router-token-file"
        )
        cls.router = ServerProcess(router_binary())
        cls.node = ServerProcess(cachenode_binary())
        try:
            cls.router_addr = cls.router.start(
                [
                    "--tls-cert", cls.pki.server_cert,
                    "--tls-key", cls.pki.server_key,
                    "--auth-tokens-file", cls.tokens_file,
                    "--node-ttl", "3s",
                ]
            )
            node_flags = [
                "--data-dir", os.path.join(d, "data"),
                "--dram-bytes", "64MiB",
                "--ssd-bytes", "0",
                "--namespaces", NS,
                "--tls-cert", cls.pki.server_cert,
                "--tls-key", cls.pki.server_key,
                "--tls-client-ca", cls.pki.ca,
                "--auth-tokens-file", cls.tokens_file,
            ]
            if cls.linked:
                node_flags += [
                    "--router", cls.router_addr,
                    "--router-cacert", cls.pki.ca,
                    "--router-token-file", node_token_file,
                    "--node-id", NODE_ID,
                    "--heartbeat-interval", "100ms",
                ]
            cls.node_addr = cls.node.start(node_flags)
        except Exception:
            cls._stop()
            raise

    @classmethod
    def _stop(cls) -> None:
        cls.node.close()
        cls.router.close()
        cls.dir.cleanup()

    @classmethod
    def tearDownClass(cls) -> None:
        cls._stop()

    def router_client(self, token, **kwargs) -> RouterClient:
        c = RouterClient(self.router_addr, tls=True, ca_file=self.pki.ca, token=token, **kwargs)
        self.addCleanup(c.close)
        return c

    def node_client(self, token, **kwargs) -> NodeClient:
        settings = dict(
            tls=True, ca_file=self.pki.ca, cert_file=self.pki.client_cert,
            key_file=self.pki.client_key, token=token,
        )
        settings.update(kwargs)
        c = NodeClient(self.node_addr, **settings)
        self.addCleanup(c.close)
        return c

    def assertCode(self, code: grpc.StatusCode, call) -> None:
        with self.assertRaises(StrataError) as e:
            call()
        self.assertEqual(e.exception.code, code, e.exception)

    def test_node_round_trip_with_client_certificate_and_route_token(self) -> None:
        node = self.node_client(TOKENS["route"])
        chain = hash_chain(NS, random_tokens(1, 2), BLOCK_TOKENS)
        payloads = [os.urandom(3000), os.urandom((1 << 20) + 5)]
        self.assertTrue(all(r.ok for r in node.put(NS, chain, payloads)))
        self.assertEqual([b.payload for b in node.get(NS, chain)], payloads)
        self.assertEqual(node.lookup(NS, chain).matched_blocks, 2)

    def test_router_round_trip_with_route_token(self) -> None:
        if not self.linked:
            self.skipTest("strata-cachenode lacks --router-cacert/--router-token-file: no TLS router link")
        router = self.router_client(TOKENS["route"], deadline_s=10.0)
        self.assertTrue(
            eventually(lambda: any(n.node_id == NODE_ID and n.synced for n in router.list_nodes())),
            self.node.stderr_text(),
        )
        tokens = random_tokens(2, 2)
        chain = hash_chain(NS, tokens, BLOCK_TOKENS)
        self.assertTrue(all(r.ok for r in self.node_client(TOKENS["route"]).put(NS, chain, [b"x", b"y"])))

        def located() -> bool:
            r = router.locate(NS, token_ids=tokens, block_tokens=BLOCK_TOKENS)
            return any(n.node_id == NODE_ID and n.matched_blocks == 2 for n in r.nodes)

        self.assertTrue(eventually(located), self.router.stderr_text())
        routed = router.route(NS, chain_hashes=chain)
        self.assertEqual((routed.node_id, routed.endpoint, routed.matched_blocks), (NODE_ID, self.node_addr, 2))
        router.report_outcome(routed.decision_id, ttft_ms=5.0, prompt_tokens=32, cached_tokens=32)

    def test_admin_token_may_set_the_experiment(self) -> None:
        report = self.router_client(TOKENS["admin"]).set_experiment("locality")
        self.assertEqual([p.policy for p in report.policies], ["locality"])

    def test_missing_token_is_unauthenticated(self) -> None:
        chain = hash_chain(NS, random_tokens(3, 1), BLOCK_TOKENS)
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, self.router_client(None).list_nodes)
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, lambda: self.node_client(None).lookup(NS, chain))

    def test_unknown_token_is_unauthenticated(self) -> None:
        chain = hash_chain(NS, random_tokens(4, 1), BLOCK_TOKENS)
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, self.router_client("unknown-token-0123456789abcdef").list_nodes)
        self.assertCode(
            grpc.StatusCode.UNAUTHENTICATED, lambda: self.node_client("unknown-token-0123456789abcdef").get(NS, chain)
        )

    def test_wrong_role_is_permission_denied(self) -> None:
        chain = hash_chain(NS, random_tokens(5, 1), BLOCK_TOKENS)
        # route may not change the experiment (admin only) nor delete blocks (node, admin).
        self.assertCode(
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.router_client(TOKENS["route"]).set_experiment("round_robin"),
        )
        self.assertCode(
            grpc.StatusCode.PERMISSION_DENIED, lambda: self.node_client(TOKENS["route"]).delete(NS, chain)
        )
        # node (a cache agent's role) may not route.
        self.assertCode(
            grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.router_client(TOKENS["node"]).route(NS, chain_hashes=chain),
        )

    def test_node_refuses_a_client_without_a_certificate(self) -> None:
        node = self.node_client(TOKENS["route"], cert_file=None, key_file=None, max_attempts=1)
        chain = hash_chain(NS, random_tokens(6, 1), BLOCK_TOKENS)
        self.assertCode(grpc.StatusCode.UNAVAILABLE, lambda: node.lookup(NS, chain))

    def test_plaintext_client_cannot_reach_a_tls_server(self) -> None:
        c = RouterClient(self.router_addr, max_attempts=1)
        self.addCleanup(c.close)
        self.assertCode(grpc.StatusCode.UNAVAILABLE, c.list_nodes)


if __name__ == "__main__":
    unittest.main()
