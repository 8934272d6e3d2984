#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/ (see fuzz/README.md).

Seeds are small, valid and near-valid inputs that put each fuzzer on the interesting paths at once:
the protobuf and msgpack encodings are written by hand here (no Python packages needed), in the
exact input layout each *_fuzzer.cc documents. Re-running rewrites the seed-* files only; inputs
that `scripts/fuzz.sh --merge` folded in (named by their SHA-1) and regress-* inputs (failures
turned into regression tests) are left alone.

Usage: fuzz/make_corpus.py [CORPUS_DIR]   (default: fuzz/corpus beside this script)
"""

import hashlib
import os
import struct
import sys

# ---- protobuf wire format -------------------------------------------------------------------


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3 | 0) + varint(n)


def f_fixed64(field, n):
    return varint(field << 3 | 1) + struct.pack("<Q", n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_packed(field, values):
    return f_bytes(field, b"".join(varint(v) for v in values))


# ---- msgpack --------------------------------------------------------------------------------


def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 1 << 32:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)])
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))


# ---- seeds ----------------------------------------------------------------------------------


def namespace_id(name):
    digest = hashlib.sha256(b"strata.namespace.v1\0" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big")


def hashes(n, salt=0):
    return [hashlib.sha256(bytes([salt, i])).digest() for i in range(n)]


def resp_seeds():
    cmd = lambda *args: b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    # Byte 0: limits profile (0 tiny, 1 mid, 2 defaults); byte 1: read-size seed.
    return {
        "pipelined": b"\x02\x07" + cmd(b"SET", b"k", b"v") + cmd(b"GET", b"k") + cmd(b"PING"),
        "inline": b"\x02\x03PING\r\nGET  key\tx\r\n\r\nEXISTS a b c\n",
        "empty_array": b"\x00\x01*0\r\n*1\r\n$4\r\nPING\r\n",
        "tiny_too_large": b"\x00\x05" + cmd(b"SET", b"k", b"x" * 100) + cmd(b"GET", b"k"),
        "tiny_over_discard": b"\x00\x05*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n",
        "tiny_many_args": b"\x00\x02" + cmd(*[b"a"] * 9),
        "mid_big_bulk": b"\x01\x09" + cmd(b"SET", b"key", bytes(range(256)) * 68),
        "bad_header": b"\x02\x01*2\r\n$3\r\nGET\r\n:1\r\n",
        "negative_len": b"\x02\x01*1\r\n$-1\r\n",
        "missing_crlf": b"\x02\x01*1\r\n$4\r\nPINGxx",
        "mget": b"\x02\x11" + cmd(b"MGET", b"a", b"b", b"c", b"d"),
    }


def vllm_seeds():
    toks = list(range(100, 108))
    stored_old = ["BlockStored", [1, 2], None, toks, 4, None, "GPU"]
    stored_new = ["BlockStored", [b"\x01" * 32, b"\x02" * 32], b"\x03" * 32, toks, 4, 7, "CPU",
                  "lora-a", None, 0]
    removed = ["BlockRemoved", [1, 2**64 - 1, -5], "GPU"]
    cleared = ["AllBlocksCleared"]
    stored_map = {"type": "BlockStored", "block_hashes": [9], "parent_block_hash": None,
                  "token_ids": [1, 2, 3, 4], "block_size": 4, "medium": "DISK"}
    return {
        "array_batch": mp([1.5, [stored_old, removed], 0]),
        "chain_then_child": mp([2.0, [["BlockStored", [1], None, [1, 2, 3, 4], 4],
                                      ["BlockStored", [2], 1, [5, 6, 7, 8], 4],
                                      ["BlockRemoved", [1]], cleared]]),
        "new_fields": mp([3.0, [stored_new, ["BlockRemoved", [b"\x01" * 32], "CPU"]], None]),
        "map_batch": mp({"ts": 4, "events": [stored_map, {"type": "AllBlocksCleared"}],
                         "data_parallel_rank": 1}),
        "negative_hash": mp([5.0, [["BlockStored", [-1], None, [0, 0, 0, 0], 4]]]),
        "bad_tag": mp([6.0, [["BlockMoved", [1]]]]),
        "huge_array_header": b"\x93\xcb" + struct.pack(">d", 1.0) + b"\xdd\xff\xff\xff\xff",
    }


def trace_seeds():
    # Byte 0: block_tokens - 1 (mod 16); byte 1: time_scale (bits 0-1) and max_requests (bits 2-3).
    line = lambda ts, inp, out, ids: (
        '{"timestamp": %s, "input_length": %d, "output_length": %d, "hash_ids": [%s]}\n'
        % (ts, inp, out, ", ".join(str(i) for i in ids))).encode()
    return {
        "mooncake": b"\x03\x00" + line(0, 8, 3, [0, 1]) + line(10.5, 9, 0, [0, 1, 2]) +
                    b"\n" + line(27, 1, 7, [5]),
        "scaled": b"\x00\x02" + line(100, 2, 1, [1, 2]) + line(1e300, 1, 1, [3]),
        "max_requests": b"\x00\x04" + line(1, 1, 1, [1]) + line(2, 1, 1, [2]),
        "extra_fields": b"\x01\x00" + b'{"timestamp": 1, "input_length": 3, "output_length": 0, '
                        b'"hash_ids": [7, 8], "model": "x", "nested": {"a": [1, {"b": 2}]}}\n',
        "backwards": b"\x00\x00" + line(5, 1, 1, [1]) + line(4, 1, 1, [2]),
        "big_ids": b"\x00\x00" + line(0, 2, 0, [9223372036854775807, 4294967296]),
    }


def chain_hash_seeds():
    def seed(ns, block_tokens, salt, extra, tokens):
        return (struct.pack("<Q", ns) + bytes([block_tokens - 1, len(salt), len(extra)]) + salt +
                extra + b"".join(struct.pack("<I", t) for t in tokens))
    return {
        "two_blocks": seed(1, 4, b"", b"", range(8)),
        "salt_extra_partial": seed(namespace_id("llama3-8b/bf16/vllm-flash/tp0/b16"), 16,
                                   b"tenant-a", b"lora:3", range(40)),
        "one_token_blocks": seed(2**64 - 1, 1, b"s", b"", [0, 2**32 - 1, 7]),
    }


def grpc_seeds():
    ns = namespace_id("fuzz/ns")
    hs = hashes(4)
    key = lambda h: f_fixed64(1, ns) + f_bytes(2, h)
    header = lambda size, h=hs[0]: f_bytes(1, key(h) + f_varint(2, size) + f_fixed64(3, 42) +
                                            f_varint(4, 1))
    chain_req = lambda hh, extra=b"": f_fixed64(1, ns) + b"".join(f_bytes(2, h) for h in hh) + extra
    event = lambda kind, tier, hh: (f_varint(1, kind) + f_varint(2, tier) + f_fixed64(3, ns) +
                                    f_bytes(4, b"".join(hh)))
    # Byte 0: message type (low bits), 0x80: the node knows only namespace "fuzz/ns".
    return {
        "get": b"\x80" + chain_req(hs, f_varint(3, 1) + f_varint(4, 1 << 20)),
        "get_any_namespace": b"\x00" + chain_req(hs[:1]),
        "lookup": b"\x81" + chain_req(hs),
        "delete": b"\x82" + chain_req(hs[:2]),
        "put_header": b"\x83" + header(4096),
        "put_too_large": b"\x83" + header((1 << 20) + 1),
        "put_short_hash": b"\x83" + header(10, b"\x01" * 31),
        "route_tokens": b"\x04" + f_bytes(1, "fuzz/ns") + f_packed(3, range(16)) +
                        f_varint(4, 4) + f_bytes(5, "salt"),
        "route_hashes": b"\x04" + f_bytes(1, "fuzz/ns") + b"".join(f_bytes(2, h) for h in hs),
        "route_default_block": b"\x04" + f_bytes(1, "fuzz/ns") + f_packed(3, range(9)),
        "locate_tokens": b"\x05" + f_bytes(1, "llama/b4") + f_packed(3, range(8)),
        "publish_batch": b"\x06" + f_bytes(1, f_bytes(1, "node-a") + f_varint(2, 1) +
                                           f_varint(3, 2) + f_bytes(4, event(1, 2, hs)) +
                                           f_bytes(4, event(2, 3, hs[:1])) +
                                           f_bytes(4, f_varint(1, 3))),
        "publish_snapshot": b"\x06" + f_bytes(2, f_bytes(1, "node-a") + f_varint(4, 0) +
                                              f_varint(5, 1) + f_bytes(6, event(1, 1, hs))),
        "register_namespace": b"\x07" + f_bytes(1, "model/bf16/tp0/b16"),
    }


TARGETS = {
    "resp_parser": resp_seeds,
    "vllm_event_decode": vllm_seeds,
    "trace_parser": trace_seeds,
    "chain_hash": chain_hash_seeds,
    "grpc_requests": grpc_seeds,
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for target, make in TARGETS.items():
        out = os.path.join(root, target)
        os.makedirs(out, exist_ok=True)
        for name, data in make().items():
            with open(os.path.join(out, "seed-" + name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(make())} seeds in {out}")


if __name__ == "__main__":
    main()
