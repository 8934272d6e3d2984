#!/usr/bin/python3
"""RESP conformance of strata-cachenode against Debian's python3-redis (redis-py).

Usage: resp_conformance.py PORT. Prints one line per failed check and exits 1 if any failed;
prints "conformance: OK" and exits 0 otherwise. Exit 77 when redis-py is not installed.
Pipelines run with transaction=False: MULTI/EXEC is not part of the endpoint.
"""
import os
import sys

try:
    import redis
except ImportError:
    print("redis-py (python3-redis) is not installed")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what)


def main():
    port = int(sys.argv[1])
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)

    check(r.ping() is True, "ping")
    check(r.set("py:a", b"1") is True, "set")
    check(r.get("py:a") == b"1", "get")
    check(r.get("py:missing") is None, "get of a missing key is None")
    check(r.mget(["py:a", "py:missing"]) == [b"1", None], "mget")
    check(r.exists("py:a", "py:missing", "py:a") == 2, "exists counts every key")
    check(r.delete("py:a", "py:missing") == 1, "delete counts present keys")
    check(r.get("py:a") is None, "get after delete")

    # Binary-safe keys and values: CR, LF, NUL and random bytes, several sizes.
    for size in (1, 1000, 65536, 2 * 1024 * 1024 + 3):
        value = os.urandom(size) + b"\r\n\x00$*"
        key = b"py:bin\r\n\x00" + str(size).encode()
        check(r.set(key, value) is True, f"set binary {size}")
        check(r.get(key) == value, f"binary round trip {size}")

    pipe = r.pipeline(transaction=False)
    for i in range(50):
        pipe.set(f"py:p{i}", f"value-{i}")
        pipe.get(f"py:p{i}")
    results = pipe.execute()
    check(len(results) == 100, "pipeline reply count")
    check(all(results[2 * i] is True for i in range(50)), "pipelined sets")
    check(all(results[2 * i + 1] == f"value-{i}".encode() for i in range(50)), "pipelined gets")

    info = r.info()
    check("redis_version" in info, "info has redis_version")
    check("total_commands_processed" in info, "info has stats")
    check(any(k.startswith("tier_") and k.endswith("_capacity_bytes") for k in info),
          "info has per-tier capacity")
    check("strata_namespace" in r.info("strata"), "info strata section")

    try:
        r.set("py:x", "v", ex=10)
        check(False, "SET with EX must be refused")
    except redis.ResponseError as e:
        check("not supported" in str(e), "SET EX error says it is not supported")

    if failures:
        sys.exit(1)
    print("conformance: OK")


if __name__ == "__main__":
    main()
