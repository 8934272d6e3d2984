"""strata_client: the Python client of Strata for Dynamo-style frontends.

- hash_chain / namespace_id (strata_client.hashing): chain hashes identical to common/block_hash.h,
  standard library only.
- RouterClient (strata_client.router): route a request, report its outcome, locate prefixes.
- NodeClient (strata_client.node): put / get / lookup blocks on a cache node, checksums verified.

The gRPC clients need the stubs generated at build time (target strata_python_stubs, written to
BUILD_DIR/python) on PYTHONPATH, plus Debian's python3-grpcio, python3-protobuf and python3-xxhash.
They are imported on first use, so `from strata_client import hash_chain` works without them.
See clients/python/README.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from strata_client.hashing import (
    CHAIN_HASH_BYTES,
    hash_block,
    hash_chain,
    namespace_id,
    validate_namespace_name,
)
from strata_client.tier import Tier

__all__ = [
    "CHAIN_HASH_BYTES",
    "GetBlock",
    "LocateResult",
    "LookupResult",
    "NodeClient",
    "NodeStatus",
    "PutResult",
    "RouteResult",
    "RouterClient",
    "StrataError",
    "Tier",
    "hash_block",
    "hash_chain",
    "namespace_id",
    "validate_namespace_name",
]

# Names that need grpc (and, for the clients, the generated stubs), loaded on first access.
_LAZY = {
    "StrataError": "strata_client.errors",
    "RouterClient": "strata_client.router",
    "RouteResult": "strata_client.router",
    "LocateResult": "strata_client.router",
    "NodeStatus": "strata_client.router",
    "NodeClient": "strata_client.node",
    "PutResult": "strata_client.node",
    "GetBlock": "strata_client.node",
    "LookupResult": "strata_client.node",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strata_client' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
