"""Channels, deadlines and retries shared by RouterClient and NodeClient (clients/rpc_retry.h's
rules in Python).

One logical call has one deadline covering all its attempts and the backoff between them; only
UNAVAILABLE is retried (after 50 ms, 100 ms, 200 ms, ...), because every other code says the same
server would answer the same again. Thread-safe: grpc channels are, and nothing here is mutable.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional, Sequence, Tuple, TypeVar

import grpc

from strata_client.errors import StrataError

try:  # Generated at build time (clients/python/CMakeLists.txt); never checked in.
    from strata.v1 import cachenode_pb2, cachenode_pb2_grpc, router_pb2, router_pb2_grpc
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "strata_client: the generated gRPC stubs (strata/v1/*_pb2.py) are not importable: build "
        "the strata_python_stubs target (e.g. `ninja -C build strata_python_stubs`) and put "
        "BUILD_DIR/python on PYTHONPATH. Cause: " + str(e)
    ) from e

__all__ = [
    "cachenode_pb2",
    "cachenode_pb2_grpc",
    "router_pb2",
    "router_pb2_grpc",
    "ChannelSettings",
    "call_with_retries",
    "check_budget",
    "make_channel",
]

T = TypeVar("T")

_FIRST_BACKOFF_S = 0.05


@dataclasses.dataclass(frozen=True)
class ChannelSettings:
    """How to reach a server. Plaintext unless `tls`; `ca_file` verifies the server (None: the
    system roots); `cert_file` + `key_file` present a client certificate (mutual TLS); `token` goes
    out as `authorization: Bearer TOKEN` on every call (gRPC sends call credentials only over TLS,
    so a token needs `tls`). `server_name` overrides the name checked against the server's
    certificate (None: the target's host)."""

    tls: bool = False
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    token: Optional[str] = None
    server_name: Optional[str] = None

    def validate(self) -> None:
        """ValueError naming the first inconsistent field."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        if not self.tls and (self.ca_file or self.cert_file or self.server_name):
            raise ValueError("ca_file, cert_file, key_file and server_name need tls=True")
        if self.token is not None:
            if not self.token or any(c.isspace() for c in self.token):
                raise ValueError("token is empty or contains whitespace")
            if not self.tls:
                raise ValueError("a token needs tls=True (bearer tokens are never sent in the clear)")


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def make_channel(
    target: str, settings: ChannelSettings, options: Sequence[Tuple[str, object]] = ()
) -> grpc.Channel:
    """A channel to `target` ("HOST:PORT" or any gRPC target). Does not connect (the first call
    does). ValueError for an empty target or inconsistent settings; OSError if a PEM file cannot be
    read."""
    if not target:
        raise ValueError("target is empty")
    settings.validate()
    opts = list(options)
    if not settings.tls:
        return grpc.insecure_channel(target, options=opts)
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ca_file),
        private_key=_read(settings.key_file),
        certificate_chain=_read(settings.cert_file),
    )
    if settings.token is not None:
        creds = grpc.composite_channel_credentials(
            creds, grpc.access_token_call_credentials(settings.token)
        )
    if settings.server_name:
        opts.append(("grpc.ssl_target_name_override", settings.server_name))
    return grpc.secure_channel(target, creds, options=opts)


def call_with_retries(
    deadline_s: float, max_attempts: int, attempt: Callable[[float], T]
) -> T:
    """Runs `attempt(timeout_s)` until it returns, fails with a code other than UNAVAILABLE, uses
    `max_attempts`, or the next backoff would end past the deadline; `timeout_s` is what is left of
    the call's deadline. grpc.RpcError becomes StrataError; a StrataError raised by `attempt` (e.g.
    DATA_LOSS) passes through and is retried only when UNAVAILABLE."""
    deadline = time.monotonic() + deadline_s
    backoff = _FIRST_BACKOFF_S
    n = 0
    while True:
        n += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise StrataError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call")
        try:
            return attempt(left)
        except grpc.RpcError as e:
            error = StrataError.from_rpc_error(e)
        except StrataError as e:
            error = e
        if (
            error.code != grpc.StatusCode.UNAVAILABLE
            or n >= max_attempts
            or time.monotonic() + backoff >= deadline
        ):
            raise error
        time.sleep(backoff)  # backoff between attempts, not synchronization
        backoff *= 2


class ClientBase:
    """What both clients share: the target, close(), and use as a context manager."""

    _target: str
    _channel: grpc.Channel

    @property
    def target(self) -> str:
        return self._target

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_budget(owner: str, deadline_s: float, max_attempts: int) -> None:
    """ValueError naming the bad field (RetryBudget::Validate)."""
    if not deadline_s > 0:
        raise ValueError(f"{owner} deadline_s must be positive, got {deadline_s}")
    if max_attempts < 1:
        raise ValueError(f"{owner} max_attempts must be at least 1, got {max_attempts}")
