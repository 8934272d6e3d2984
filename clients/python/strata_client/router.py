"""RouterClient: the Python client of the Strata router (strata-router) for Dynamo-style frontends.

It mirrors clients/router_client.h: the query side of the Router service of
proto/strata/v1/router.proto (Route, ReportOutcome, Locate, ListNodes, the experiment calls) with
dataclass results, StrataError for failures, a deadline on every call and retries on UNAVAILABLE
only. The router answers UNAVAILABLE both when it cannot be reached and when it knows no live node;
both are retried, then raised. A retried Route may leave an extra decision behind on the router,
which is harmless: an unreported decision only expires.

Thread-safety: a RouterClient is thread-safe; concurrent calls share one gRPC channel. Results are
owned by the caller. Use it as a context manager, or call close(), to release the channel.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import grpc

from strata_client import _rpc
from strata_client._rpc import router_pb2, router_pb2_grpc
from strata_client.errors import StrataError
from strata_client.hashing import CHAIN_HASH_BYTES, validate_namespace_name
from strata_client.tier import Tier

__all__ = [
    "RouterClient",
    "TierCounts",
    "PeerSource",
    "ShadowChoice",
    "RouteResult",
    "NodeHolding",
    "LocateResult",
    "NodeLoad",
    "NodeStatus",
    "PolicyFigures",
    "ExperimentReport",
]


@dataclasses.dataclass(frozen=True)
class TierCounts:
    """Blocks counted per tier, each in its best (fastest) tier."""

    hbm: int = 0
    dram: int = 0
    ssd: int = 0


@dataclasses.dataclass(frozen=True)
class PeerSource:
    """Another node holding blocks beyond the chosen node's match, which the chosen node could pull."""

    node_id: str
    endpoint: str
    from_block: int  # first block index the peer adds
    blocks: int  # consecutive blocks from there
    tier: Tier  # slowest tier among them on the peer


@dataclasses.dataclass(frozen=True)
class ShadowChoice:
    """What another policy of the experiment would have chosen (shadow evaluation)."""

    policy: str
    node_id: str
    matched_blocks: int
    predicted_ttft_ms: float


@dataclasses.dataclass(frozen=True)
class RouteResult:
    node_id: str
    endpoint: str  # HOST:PORT of the chosen node: where to read and write the blocks
    matched: TierCounts
    matched_blocks: int
    total_blocks: int
    predicted_ttft_ms: float
    policy: str  # the policy that decided
    decision_id: int  # pass to report_outcome
    peers: list[PeerSource]
    shadow: list[ShadowChoice]


@dataclasses.dataclass(frozen=True)
class NodeHolding:
    """A node holding a prefix of a located chain."""

    node_id: str
    endpoint: str
    matched_blocks: int  # longest prefix the node holds, counted from block 0
    tiers: TierCounts  # those blocks, each counted in its best tier on the node


@dataclasses.dataclass(frozen=True)
class LocateResult:
    total_blocks: int
    nodes: list[NodeHolding]  # matched_blocks >= 1; longest first, ties by node id


@dataclasses.dataclass(frozen=True)
class NodeLoad:
    queued_requests: int = 0
    running_requests: int = 0
    prefill_tokens_in_flight: int = 0
    free_hbm_blocks: int = 0
    draining: bool = False  # takes no new requests


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """A live node as the router sees it."""

    node_id: str
    endpoint: str
    epoch: int
    load: NodeLoad
    heartbeat_age_ms: int
    indexed_blocks: int
    source: str  # "strata" (a cache node) or "vllm" (an engine's event stream)
    synced: bool  # False while the router waits for the node's snapshot


@dataclasses.dataclass(frozen=True)
class PolicyFigures:
    """One policy's figures in an experiment; fields as in router.proto's PolicyFigures."""

    policy: str
    weight: int
    decisions: int
    matched: TierCounts
    requested_blocks: int
    mean_predicted_ttft_ms: float
    outcomes: int
    mean_reported_ttft_ms: float
    p50_reported_ttft_ms: float
    p99_reported_ttft_ms: float
    shadow_requests: int
    mean_shadow_hit_blocks: float
    mean_shadow_predicted_ttft_ms: float
    shadow_agreements: int


@dataclasses.dataclass(frozen=True)
class ExperimentReport:
    spec: str  # e.g. "locality=50,round_robin=50"
    requests: int
    policies: list[PolicyFigures]  # in spec order


def _tiers(t: "router_pb2.TierBlocks") -> TierCounts:
    return TierCounts(hbm=t.hbm, dram=t.dram, ssd=t.ssd)


def _copy(cls, message, **overrides):
    """The dataclass `cls` from the same-named fields of a proto message; `overrides` for fields
    that need converting (nested messages, enums)."""
    values = {
        f.name: getattr(message, f.name) for f in dataclasses.fields(cls) if f.name not in overrides
    }
    return cls(**values, **overrides)


def _load(l: "router_pb2.NodeLoad") -> NodeLoad:
    return _copy(NodeLoad, l)


def _report(r: "router_pb2.ExperimentReport") -> ExperimentReport:
    return ExperimentReport(
        spec=r.spec,
        requests=r.requests,
        policies=[_copy(PolicyFigures, p, matched=_tiers(p.matched)) for p in r.policies],
    )


def _chain_fields(
    what: str,
    namespace: str,
    chain_hashes: Optional[Sequence[bytes]],
    token_ids: Optional[Sequence[int]],
    block_tokens: int,
    cache_salt: str,
) -> dict:
    """The chain fields RouteRequest and LocateRequest share. StrataError(INVALID_ARGUMENT) for a
    bad namespace name, neither or both of hashes and tokens, or a hash that is not 32 bytes."""
    try:
        validate_namespace_name(namespace)
    except ValueError as e:
        raise StrataError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
    hashes = list(chain_hashes or [])
    tokens = list(token_ids or [])
    if not hashes and not tokens:
        raise StrataError(grpc.StatusCode.INVALID_ARGUMENT, f"{what} needs chain hashes or token ids")
    if hashes and tokens:
        raise StrataError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{what} takes chain hashes or token ids, not both"
        )
    for i, h in enumerate(hashes):
        if len(h) != CHAIN_HASH_BYTES:
            raise StrataError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{what}: chain hash {i} has {len(h)} bytes, not {CHAIN_HASH_BYTES}",
            )
    if block_tokens < 0:
        raise StrataError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: block_tokens is negative")
    return {
        "namespace": namespace,
        "chain_hashes": [bytes(h) for h in hashes],
        "token_ids": tokens,
        "block_tokens": block_tokens,
        "cache_salt": cache_salt,
    }


class RouterClient(_rpc.ClientBase):
    """Client of one strata-router. Construction does not contact the router (the first call does).

    `target` is "HOST:PORT" or any gRPC target. TLS settings as in ChannelSettings: `tls` with
    `ca_file` (None: system roots), `cert_file` + `key_file` for mutual TLS, `token` sent as
    `authorization: Bearer` (needs TLS). `deadline_s` bounds each call, retries and backoff
    included: a route decision is in the request path of a prompt, so it is short. `max_attempts`
    counts attempts per call; only UNAVAILABLE is retried. ValueError for an empty target or
    inconsistent settings."""

    def __init__(
        self,
        target: str,
        *,
        tls: bool = False,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        token: Optional[str] = None,
        server_name: Optional[str] = None,
        deadline_s: float = 2.0,
        max_attempts: int = 3,
    ) -> None:
        _rpc.check_budget("RouterClient", deadline_s, max_attempts)
        self._target = target
        self._deadline_s = deadline_s
        self._max_attempts = max_attempts
        self._channel = _rpc.make_channel(
            target,
            _rpc.ChannelSettings(
                tls=tls,
                ca_file=ca_file,
                cert_file=cert_file,
                key_file=key_file,
                token=token,
                server_name=server_name,
            ),
        )
        self._stub = router_pb2_grpc.RouterStub(self._channel)

    def _unary(self, method, request):
        return _rpc.call_with_retries(
            self._deadline_s, self._max_attempts, lambda timeout: method(request, timeout=timeout)
        )

    def route(
        self,
        namespace: str,
        *,
        chain_hashes: Optional[Sequence[bytes]] = None,
        token_ids: Optional[Sequence[int]] = None,
        block_tokens: int = 0,
        cache_salt: str = "",
        prompt_tokens: int = 0,
        session_key: str = "",
        request_id: str = "",
        policy: str = "",
    ) -> RouteResult:
        """Picks a node for a request given by its chain: either `chain_hashes` (32 bytes each, in
        chain order, e.g. from hash_chain) or `token_ids` (the router hashes them, `block_tokens`
        per block (0: its cost model's default), `cache_salt` mixed into the first block), not
        both. `session_key` keys the A/B split (empty: request_id); `policy` overrides it.
        StrataError: INVALID_ARGUMENT before any RPC for a bad namespace name or chain, or from the
        router (e.g. an unknown policy); UNAVAILABLE when the router knows no live node."""
        fields = _chain_fields(
            "route", namespace, chain_hashes, token_ids, block_tokens, cache_salt
        )
        request = router_pb2.RouteRequest(
            prompt_tokens=prompt_tokens,
            session_key=session_key,
            request_id=request_id,
            policy=policy,
            **fields,
        )
        r = self._unary(self._stub.Route, request)
        return _copy(
            RouteResult,
            r,
            matched=_tiers(r.matched),
            peers=[_copy(PeerSource, p, tier=Tier(p.tier)) for p in r.peers],
            shadow=[_copy(ShadowChoice, s) for s in r.shadow],
        )

    def report_outcome(
        self, decision_id: int, ttft_ms: float, prompt_tokens: int = 0, cached_tokens: int = 0
    ) -> None:
        """Reports what a routed request measured (time to first token, prompt and cached tokens).
        StrataError(NOT_FOUND) for an unknown or expired decision id."""
        request = router_pb2.ReportOutcomeRequest(
            decision_id=decision_id,
            ttft_ms=ttft_ms,
            prompt_tokens=prompt_tokens,
            cached_tokens=cached_tokens,
        )
        self._unary(self._stub.ReportOutcome, request)

    def locate(
        self,
        namespace: str,
        *,
        chain_hashes: Optional[Sequence[bytes]] = None,
        token_ids: Optional[Sequence[int]] = None,
        block_tokens: int = 0,
        cache_salt: str = "",
    ) -> LocateResult:
        """Which live nodes hold a prefix of the chain (given as in route), and in which tiers,
        without routing: no decision, no pending load, no experiment figures. StrataError as
        route; no node holding block 0 is an empty result, not an error."""
        fields = _chain_fields(
            "locate", namespace, chain_hashes, token_ids, block_tokens, cache_salt
        )
        r = self._unary(self._stub.Locate, router_pb2.LocateRequest(**fields))
        return LocateResult(
            total_blocks=r.total_blocks,
            nodes=[
                NodeHolding(
                    node_id=n.node_id,
                    endpoint=n.endpoint,
                    matched_blocks=n.matched_blocks,
                    tiers=_tiers(n.tiers),
                )
                for n in r.nodes
            ],
        )

    def list_nodes(self) -> list[NodeStatus]:
        """The live nodes and their load, in the router's order."""
        r = self._unary(self._stub.ListNodes, router_pb2.ListNodesRequest())
        return [
            NodeStatus(
                node_id=n.node_id,
                endpoint=n.endpoint,
                epoch=n.epoch,
                load=_load(n.load),
                heartbeat_age_ms=n.last_heartbeat_age_ms,
                indexed_blocks=n.indexed_blocks,
                source=n.source,
                synced=n.synced,
            )
            for n in r.nodes
        ]

    def set_experiment(self, spec: str) -> ExperimentReport:
        """Replaces the traffic split ("locality=50,round_robin=50", or one policy name) and returns
        the new experiment's report. StrataError(INVALID_ARGUMENT) for a spec the router rejects;
        PERMISSION_DENIED without an admin token where tokens are configured."""
        return _report(
            self._unary(self._stub.SetExperiment, router_pb2.SetExperimentRequest(spec=spec))
        )

    def get_experiment_report(self) -> ExperimentReport:
        """The current experiment's per-policy figures."""
        return _report(
            self._unary(
                self._stub.GetExperimentReport, router_pb2.GetExperimentReportRequest()
            )
        )
