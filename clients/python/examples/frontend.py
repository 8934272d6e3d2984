#!/usr/bin/env python3
"""An example Dynamo-style frontend loop on strata_client.

For each request it hashes the prompt's tokens into a chain (hash_chain, identical to the C++
helper), asks the router where to send it (route), reads the cached prefix from the chosen node
(get, checksums verified), "computes" the missing blocks and writes them through to that node
(put), then reports the outcome to the router (report_outcome). The prompts share a system prompt,
so after the first request the router should find its blocks cached.

No model runs here: a block's KV payload is stand-in bytes derived from its chain hash, and the
reported time to first token is the wall time of the loop's own work (route, read, write), a
stand-in for an engine's prefill. Read payloads are checked against the stand-in bytes.

    PYTHONPATH=build/python:clients/python python3 clients/python/examples/frontend.py \\
        --router 127.0.0.1:7080 --namespace default --requests 5

TLS: --tls (system roots) or --cacert PATH, --cert/--key for mutual TLS, and the bearer token
(role `route`) from --token-file PATH or the STRATA_TOKEN environment variable, never from argv.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from typing import Optional

from strata_client import NodeClient, RouterClient, StrataError, hash_chain


def stand_in_payload(chain_hash: bytes, size: int) -> bytes:
    """Deterministic bytes for a block: what an engine would have computed as its KV."""
    seed = hashlib.sha256(b"example-kv" + chain_hash).digest()
    return (seed * (size // len(seed) + 1))[:size]


def prompt_tokens(request: int, system_tokens: int, user_tokens: int) -> list[int]:
    """A shared system prompt followed by a per-request question."""
    system = random.Random(7).choices(range(128000), k=system_tokens)
    user = random.Random(1000 + request).choices(range(128000), k=user_tokens)
    return system + user


def read_token(path: Optional[str]) -> Optional[str]:
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    return os.environ.get("STRATA_TOKEN") or None


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--router", required=True, help="strata-router HOST:PORT")
    p.add_argument("--namespace", default="default", help="namespace the nodes accept")
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--block-tokens", type=int, default=16)
    p.add_argument("--block-bytes", type=int, default=16 << 10, help="stand-in KV bytes per block")
    p.add_argument("--system-tokens", type=int, default=64)
    p.add_argument("--user-tokens", type=int, default=40)
    p.add_argument("--cache-salt", default="", help="tenant salt mixed into the first block")
    p.add_argument("--tls", action="store_true", help="TLS with the system roots")
    p.add_argument("--cacert", help="PEM CA verifying the servers (implies --tls)")
    p.add_argument("--cert", help="PEM client certificate for mutual TLS (with --key)")
    p.add_argument("--key", help="PEM private key of --cert")
    p.add_argument("--token-file", help="file holding the bearer token (else $STRATA_TOKEN)")
    args = p.parse_args(argv)

    tls = args.tls or bool(args.cacert) or bool(args.cert)
    security = dict(
        tls=tls,
        ca_file=args.cacert,
        cert_file=args.cert,
        key_file=args.key,
        token=read_token(args.token_file),
    )
    nodes: dict[str, NodeClient] = {}
    totals = {"routed": 0, "read": 0, "written": 0, "router_matched": 0}
    try:
        with RouterClient(args.router, **security) as router:
            for i in range(args.requests):
                tokens = prompt_tokens(i, args.system_tokens, args.user_tokens)
                chain = hash_chain(args.namespace, tokens, args.block_tokens, cache_salt=args.cache_salt)
                start = time.monotonic()
                route = router.route(
                    args.namespace, chain_hashes=chain, prompt_tokens=len(tokens),
                    session_key=f"user-{i % 3}", request_id=f"example-{i}",
                )
                node = nodes.get(route.endpoint)
                if node is None:
                    node = nodes[route.endpoint] = NodeClient(route.endpoint, **security)
                # The cached prefix: blocks up to the first miss.
                hits = [b for b in node.get(args.namespace, chain, stop_at_first_miss=True) if b.found]
                for b in hits:
                    if b.payload != stand_in_payload(chain[b.index], args.block_bytes):
                        raise SystemExit(f"request {i}: block {b.index} read back different bytes")
                # "Prefill" the rest and write it through, positions continuing the chain.
                missing = list(range(len(hits), len(chain)))
                if missing:
                    results = node.put(
                        args.namespace,
                        [chain[j] for j in missing],
                        [stand_in_payload(chain[j], args.block_bytes) for j in missing],
                        chain_positions=missing,
                    )
                    refused = [r for r in results if not r.ok]
                    if refused:
                        raise SystemExit(f"request {i}: node refused {len(refused)} blocks: {refused[0]}")
                ttft_ms = (time.monotonic() - start) * 1000.0
                router.report_outcome(
                    route.decision_id, ttft_ms, prompt_tokens=len(tokens),
                    cached_tokens=len(hits) * args.block_tokens,
                )
                totals["routed"] += 1
                totals["read"] += len(hits)
                totals["written"] += len(missing)
                totals["router_matched"] += route.matched_blocks
                print(
                    f"request {i}: node {route.node_id} ({route.endpoint}, policy {route.policy}): "
                    f"router matched {route.matched_blocks}/{route.total_blocks} blocks, read "
                    f"{len(hits)}, wrote {len(missing)}, ttft {ttft_ms:.1f} ms, "
                    f"decision {route.decision_id} reported",
                    flush=True,
                )
    except StrataError as e:
        print(f"frontend: {e}", file=sys.stderr)
        return 1
    finally:
        for n in nodes.values():
            n.close()
    print(
        f"frontend: {totals['routed']} requests routed; blocks read {totals['read']}, written "
        f"{totals['written']}, matched at the router {totals['router_matched']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
