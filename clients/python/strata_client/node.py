"""NodeClient: the Python client of one Strata cache node (strata-cachenode) over gRPC.

It mirrors clients/cache_node_client.h: the CacheNode service of proto/strata/v1/cachenode.proto
with dataclass results, StrataError for failures, a deadline on every call and retries on
UNAVAILABLE only (every CacheNode call is idempotent: a put of the same key stores the same bytes
again). Payloads are opaque bytes. put computes each block's xxh3-64 (seed 0) and streams it in
chunks; get verifies that every block's chunks add up to its size and match its checksum, so a
caller never sees bytes the node did not vouch for (DATA_LOSS otherwise).

Namespaces are given by name (validated, id as common/namespace_id.h derives it) or by id (int).

Thread-safety: a NodeClient is thread-safe; concurrent calls share one gRPC channel. Results are
owned by the caller. Use it as a context manager, or call close(), to release the channel.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Union

import grpc
import xxhash

from strata_client import _rpc
from strata_client._rpc import cachenode_pb2, cachenode_pb2_grpc
from strata_client.errors import StrataError
from strata_client.hashing import CHAIN_HASH_BYTES, namespace_id
from strata_client.tier import Tier

__all__ = ["NodeClient", "PutResult", "GetBlock", "LookupResult", "MAX_CHUNK_BYTES"]

# The node's per-message limit for payload chunks (cachenode.proto).
MAX_CHUNK_BYTES = 4 << 20
# A request names at most this many blocks (cachenode.proto).
MAX_BLOCKS_PER_REQUEST = 4096

_CODES = {c.value[0]: c for c in grpc.StatusCode}

BytesLike = Union[bytes, bytearray, memoryview]


def _code(value: int) -> grpc.StatusCode:
    return _CODES.get(value, grpc.StatusCode.UNKNOWN)


@dataclasses.dataclass(frozen=True)
class PutResult:
    """The node's verdict on one block: OK and the tier it landed in, or why it was refused."""

    chain_hash: bytes
    code: grpc.StatusCode
    message: str
    tier: Tier

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK


@dataclasses.dataclass(frozen=True)
class GetBlock:
    """One block of a get. On a hit `payload` holds its verified bytes; on a miss it is None and
    `miss` is NOT_FOUND (absent) or DATA_LOSS (the node's copy failed its checksum)."""

    index: int  # position of the block in the requested chain
    found: bool
    tier: Tier
    payload: Optional[bytes]
    miss: Optional[grpc.StatusCode]


@dataclasses.dataclass(frozen=True)
class LookupResult:
    """Which prefix of a chain the node holds; no payloads move."""

    matched_blocks: int  # length of the longest present prefix
    hbm_blocks: int  # of that prefix, blocks whose best copy is in each tier
    dram_blocks: int
    ssd_blocks: int
    tiers: list[Tier]  # per matched block, its best tier


def _namespace_id(namespace: Union[str, int]) -> int:
    if isinstance(namespace, str):
        try:
            return namespace_id(namespace)
        except ValueError as e:
            raise StrataError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
    if not 0 <= namespace < 1 << 64:
        raise StrataError(grpc.StatusCode.INVALID_ARGUMENT, f"namespace id {namespace} is not a u64")
    return namespace


def _check_hashes(chain_hashes: Sequence[bytes]) -> list[bytes]:
    if len(chain_hashes) > MAX_BLOCKS_PER_REQUEST:
        raise StrataError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{len(chain_hashes)} blocks in one request; at most {MAX_BLOCKS_PER_REQUEST}",
        )
    out = []
    for i, h in enumerate(chain_hashes):
        if len(h) != CHAIN_HASH_BYTES:
            raise StrataError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"chain hash {i} has {len(h)} bytes, not {CHAIN_HASH_BYTES}",
            )
        out.append(bytes(h))
    return out


class _BlockReader:
    """Accumulates one found block's chunks of a Get stream and verifies it at its end."""

    def __init__(self, header: "cachenode_pb2.GetBlockHeader") -> None:
        self.header = header
        self.buf = bytearray()
        self.hasher = xxhash.xxh3_64()

    def add(self, chunk: bytes) -> None:
        if len(self.buf) + len(chunk) > self.header.size_bytes:
            raise StrataError(
                grpc.StatusCode.DATA_LOSS,
                f"block {self.header.index}: more bytes than its size {self.header.size_bytes}",
            )
        self.buf += chunk
        self.hasher.update(chunk)

    def finish(self) -> GetBlock:
        h = self.header
        if len(self.buf) != h.size_bytes:
            raise StrataError(
                grpc.StatusCode.DATA_LOSS,
                f"block {h.index}: got {len(self.buf)} bytes, header said {h.size_bytes}",
            )
        if self.hasher.intdigest() != h.checksum:
            raise StrataError(
                grpc.StatusCode.DATA_LOSS,
                f"block {h.index}: checksum {self.hasher.intdigest():016x} does not match "
                f"the node's {h.checksum:016x}",
            )
        return GetBlock(index=h.index, found=True, tier=Tier(h.tier), payload=bytes(self.buf), miss=None)


class NodeClient(_rpc.ClientBase):
    """Client of one strata-cachenode. Construction does not contact the node (the first call does).

    `target` is "HOST:PORT" or any gRPC target. TLS settings as in RouterClient. `deadline_s`
    bounds each call, retries and backoff included: long enough for a chain of large blocks from
    SSD. `max_attempts` counts attempts per call; only UNAVAILABLE is retried. `chunk_bytes` is the
    payload bytes per Put message and the largest Get chunk asked for (at most 4 MiB, the node's
    per-message limit). ValueError for an empty target or inconsistent settings."""

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
        deadline_s: float = 30.0,
        max_attempts: int = 3,
        chunk_bytes: int = 1 << 20,
    ) -> None:
        _rpc.check_budget("NodeClient", deadline_s, max_attempts)
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in (0, {MAX_CHUNK_BYTES}], got {chunk_bytes}")
        self._target = target
        self._deadline_s = deadline_s
        self._max_attempts = max_attempts
        self._chunk_bytes = chunk_bytes
        # A 4 MiB chunk plus framing, matching the node's limit.
        max_message = MAX_CHUNK_BYTES + (64 << 10)
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
            options=[
                ("grpc.max_send_message_length", max_message),
                ("grpc.max_receive_message_length", max_message),
            ],
        )
        self._stub = cachenode_pb2_grpc.CacheNodeStub(self._channel)

    def _retry(self, attempt):
        return _rpc.call_with_retries(self._deadline_s, self._max_attempts, attempt)

    def put(
        self,
        namespace: Union[str, int],
        chain_hashes: Sequence[bytes],
        payloads: Sequence[BytesLike],
        *,
        chain_positions: Optional[Sequence[int]] = None,
        from_gpu: bool = False,
    ) -> list[PutResult]:
        """Stores payloads[i] under chain_hashes[i] in one client-streaming call. Returns one
        PutResult per block, in order. `chain_positions` default to 0, 1, 2, ... (a whole chain
        from its first block); they drive the node's prefix-aware eviction. StrataError:
        INVALID_ARGUMENT before any RPC for mismatched lengths, a hash that is not 32 bytes or a
        bad namespace; a node refuses a block (RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ...) in
        its PutResult or by failing the call, keeping the blocks committed before it. Blocks are
        never half-stored."""
        ns_id = _namespace_id(namespace)
        hashes = _check_hashes(chain_hashes)
        if len(payloads) != len(hashes):
            raise StrataError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(hashes)} chain hashes but {len(payloads)} payloads",
            )
        positions = list(range(len(hashes)) if chain_positions is None else chain_positions)
        if len(positions) != len(hashes):
            raise StrataError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(hashes)} chain hashes but {len(positions)} chain positions",
            )
        views = [memoryview(p).cast("B") for p in payloads]
        # Checksums once, not once per attempt.
        headers = [
            cachenode_pb2.PutBlockHeader(
                key=cachenode_pb2.BlockKey(namespace_id=ns_id, chain_hash=h),
                size_bytes=len(v),
                checksum=xxhash.xxh3_64_intdigest(v),
                chain_position=pos,
                from_gpu=from_gpu,
            )
            for h, v, pos in zip(hashes, views, positions)
        ]
        chunk = self._chunk_bytes

        def requests():
            for header, view in zip(headers, views):
                yield cachenode_pb2.PutRequest(header=header)
                for off in range(0, len(view), chunk):
                    yield cachenode_pb2.PutRequest(chunk=view[off : off + chunk].tobytes())

        response = self._retry(lambda timeout: self._stub.Put(requests(), timeout=timeout))
        return [
            PutResult(chain_hash=r.chain_hash, code=_code(r.code), message=r.message, tier=Tier(r.tier))
            for r in response.results
        ]

    def get(
        self,
        namespace: Union[str, int],
        chain_hashes: Sequence[bytes],
        *,
        stop_at_first_miss: bool = False,
    ) -> list[GetBlock]:
        """Reads a chain: one GetBlock per block the node reported, in chain order; with
        `stop_at_first_miss` the node stops after the first miss, so the list may be shorter.
        StrataError: INVALID_ARGUMENT before any RPC as put; DATA_LOSS if a received block does not
        add up to its size or checksum (nothing of the call is returned then)."""
        ns_id = _namespace_id(namespace)
        request = cachenode_pb2.GetRequest(
            namespace_id=ns_id,
            chain_hashes=_check_hashes(chain_hashes),
            stop_at_first_miss=stop_at_first_miss,
            max_chunk_bytes=self._chunk_bytes,
        )

        def attempt(timeout: float) -> list[GetBlock]:
            # The whole chain is buffered before anything is returned, so a retry after a partial
            # stream starts over cleanly.
            call = self._stub.Get(request, timeout=timeout)
            try:
                return self._read_blocks(call)
            except StrataError:
                call.cancel()  # stop the node streaming the rest of a chain we discard
                raise

        return self._retry(attempt)

    @staticmethod
    def _read_blocks(responses) -> list[GetBlock]:
        """Blocks of one Get stream, each verified; StrataError(DATA_LOSS) on the first that fails."""
        out: list[GetBlock] = []
        reader: Optional[_BlockReader] = None
        for response in responses:
            item = response.WhichOneof("item")
            if item == "header":
                if reader is not None:
                    out.append(reader.finish())
                    reader = None
                h = response.header
                if h.found:
                    reader = _BlockReader(h)
                else:
                    out.append(
                        GetBlock(
                            index=h.index,
                            found=False,
                            tier=Tier.UNSPECIFIED,
                            payload=None,
                            miss=_code(h.miss_code) if h.miss_code else grpc.StatusCode.NOT_FOUND,
                        )
                    )
            elif item == "chunk":
                if reader is None:
                    raise StrataError(grpc.StatusCode.DATA_LOSS, "payload chunk without a block header")
                reader.add(response.chunk)
        if reader is not None:
            out.append(reader.finish())
        return out

    def lookup(self, namespace: Union[str, int], chain_hashes: Sequence[bytes]) -> LookupResult:
        """Which prefix of the chain the node holds, and in which tiers; no payloads move.
        StrataError(INVALID_ARGUMENT) before any RPC as put."""
        request = cachenode_pb2.LookupRequest(
            namespace_id=_namespace_id(namespace), chain_hashes=_check_hashes(chain_hashes)
        )
        r = self._retry(lambda timeout: self._stub.Lookup(request, timeout=timeout))
        return LookupResult(
            matched_blocks=r.matched_blocks,
            hbm_blocks=r.hbm_blocks,
            dram_blocks=r.dram_blocks,
            ssd_blocks=r.ssd_blocks,
            tiers=[Tier(t) for t in r.tiers],
        )

    def delete(self, namespace: Union[str, int], chain_hashes: Sequence[bytes]) -> int:
        """Removes the blocks from every tier. Returns how many were present. Needs a `node` or
        `admin` token where tokens are configured."""
        request = cachenode_pb2.DeleteRequest(
            namespace_id=_namespace_id(namespace), chain_hashes=_check_hashes(chain_hashes)
        )
        r = self._retry(lambda timeout: self._stub.Delete(request, timeout=timeout))
        return r.deleted_blocks

    def register_namespace(self, name: str) -> tuple[int, bool]:
        """Makes `name` known to the node. Returns (namespace id, created); created is False when
        it already was. StrataError(INVALID_ARGUMENT) for a bad name, checked before any RPC."""
        _namespace_id(name)
        request = cachenode_pb2.RegisterNamespaceRequest(name=name)
        r = self._retry(lambda timeout: self._stub.RegisterNamespace(request, timeout=timeout))
        return r.namespace_id, r.created

    def list_namespaces(self) -> dict[str, int]:
        """The namespaces the node accepts: name -> id."""
        r = self._retry(
            lambda timeout: self._stub.ListNamespaces(
                cachenode_pb2.ListNamespacesRequest(), timeout=timeout
            )
        )
        return {n.name: n.namespace_id for n in r.namespaces}
