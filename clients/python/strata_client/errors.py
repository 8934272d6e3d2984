"""The one exception the Strata Python client raises for a failed call.

The codes are gRPC's (which share google.rpc.Code's numbering with absl::Status, so they read as in
the C++ client): NOT_FOUND an ordinary miss, INVALID_ARGUMENT bad input (raised before any RPC when
the client can tell), UNAVAILABLE retry elsewhere (already retried by the client), DATA_LOSS a
payload that failed its size or checksum check, RESOURCE_EXHAUSTED a full tier or an oversized
block, UNAUTHENTICATED / PERMISSION_DENIED a missing or wrong-role token, DEADLINE_EXCEEDED the
call's deadline passed.
"""

from __future__ import annotations

import grpc

__all__ = ["StrataError"]


class StrataError(Exception):
    """A failed call: `code` (grpc.StatusCode) and `message` (the server's or the client's text)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "StrataError":
        # Every RpcError raised by a call is also a grpc.Call with code() and details().
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")
