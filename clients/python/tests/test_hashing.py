"""strata_client.hashing against the shared vectors common/testdata/chain_hash_vectors.json, which
the C++ code generated and common/block_hash_vectors_test.cc checks too: equal vectors in both
languages mean a Python frontend and the C++ router/nodes name every block the same way."""

from __future__ import annotations

import json
import os
import unittest

from strata_client import hash_block, hash_chain, namespace_id, validate_namespace_name


def _vectors_path() -> str:
    path = os.environ.get("STRATA_CHAIN_HASH_VECTORS")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "..", "common", "testdata", "chain_hash_vectors.json")


class SharedVectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        with open(_vectors_path(), encoding="utf-8") as f:
            cls.vectors = json.load(f)

    def test_namespace_ids_equal_cpp(self) -> None:
        self.assertGreater(len(self.vectors["namespaces"]), 0)
        for entry in self.vectors["namespaces"]:
            with self.subTest(name=entry["name"]):
                self.assertEqual(namespace_id(entry["name"]), int(entry["id"], 16))

    def test_invalid_namespace_names_rejected_like_cpp(self) -> None:
        self.assertGreater(len(self.vectors["invalid_namespaces"]), 0)
        for name in self.vectors["invalid_namespaces"]:
            with self.subTest(name=name):
                with self.assertRaises(ValueError):
                    validate_namespace_name(name)
                with self.assertRaises(ValueError):
                    namespace_id(name)

    def test_chain_hashes_equal_cpp(self) -> None:
        self.assertGreater(len(self.vectors["chains"]), 0)
        for c in self.vectors["chains"]:
            with self.subTest(case=c["name"]):
                got = hash_chain(
                    c["namespace"],
                    c["tokens"],
                    c["block_tokens"],
                    cache_salt=c["cache_salt"],
                    extra=bytes.fromhex(c["extra_hex"]),
                )
                self.assertEqual([h.hex() for h in got], c["chain_hashes"])

    def test_chain_hashes_equal_cpp_given_namespace_id(self) -> None:
        # A frontend that caches the id instead of the name gets the same chain.
        for c in self.vectors["chains"]:
            with self.subTest(case=c["name"]):
                got = hash_chain(
                    namespace_id(c["namespace"]),
                    c["tokens"],
                    c["block_tokens"],
                    cache_salt=c["cache_salt"],
                    extra=bytes.fromhex(c["extra_hex"]),
                )
                self.assertEqual([h.hex() for h in got], c["chain_hashes"])


class HashChainTest(unittest.TestCase):
    def test_chain_equals_block_by_block_with_parents(self) -> None:
        tokens = list(range(48))
        chain = hash_chain("default", tokens, 16, cache_salt="t")
        self.assertEqual(len(chain), 3)
        h0 = hash_block(None, "default", "t", tokens[0:16])
        h1 = hash_block(h0, "default", "ignored for later blocks", tokens[16:32])
        h2 = hash_block(h1, 0, "", tokens[32:48])
        self.assertEqual(chain, [h0, h1, h2])

    def test_salt_separates_tenants_and_extra_separates_adapters(self) -> None:
        tokens = list(range(16))
        base = hash_chain("default", tokens, 16)
        self.assertNotEqual(base, hash_chain("default", tokens, 16, cache_salt="tenant-a"))
        self.assertNotEqual(base, hash_chain("default", tokens, 16, extra=b"lora:1"))
        self.assertNotEqual(base, hash_chain("other", tokens, 16))

    def test_str_salt_hashes_as_its_utf8_bytes(self) -> None:
        tokens = list(range(8))
        self.assertEqual(
            hash_chain("default", tokens, 8, cache_salt="t\u00e9nant"),
            hash_chain("default", tokens, 8, cache_salt="t\u00e9nant".encode("utf-8")),
        )

    def test_rejects_tokens_outside_u32(self) -> None:
        with self.assertRaises(ValueError):
            hash_chain("default", [0, 1 << 32], 2)
        with self.assertRaises(ValueError):
            hash_chain("default", [-1, 0], 2)

    def test_rejects_bad_parent_and_namespace(self) -> None:
        with self.assertRaises(ValueError):
            hash_block(b"short", "default", "", [1])
        with self.assertRaises(ValueError):
            hash_chain("bad name", [1, 2], 1)
        with self.assertRaises(ValueError):
            hash_chain("default", [1, 2], -1)


if __name__ == "__main__":
    unittest.main()
