#!/usr/bin/python3
"""A stand-in for a vLLM engine's KV event publisher, for Strata's router tests.

Publishes vLLM `KVEventBatch` messages ([topic, 8-byte big-endian sequence, msgpack batch]) the way
vllm/distributed/kv_events.py does, for a planned set of token chains, and prints on stdout what the
router should end up indexing, before publishing anything. Needs only Debian's python3-zmq and
python3-msgpack (run it with /usr/bin/python3 where another python3 comes first on PATH).

The socket is an XPUB (wire-compatible with vLLM's PUB), so the script waits until a subscriber has
subscribed before it publishes: nothing is lost to ZMQ's slow joiner, without sleeps.

Plan: chain c has --blocks-per-chain blocks of --block-size token ids (random from --seed); the
first --shared-prefix-blocks blocks are the same in every chain (a system prompt). Chains are stored
in order, each as --events-per-chain BlockStored events (one batch each); like vLLM, a chain whose
shared prefix is already cached stores only its own blocks, with parent_block_hash naming the
prefix's last block. Then optional steps, in this order: AllBlocksCleared after the first
--clear-after chains (the chains stored after it store the prefix again); BlockRemoved for the
own (non-shared) blocks of the last --remove-chains chains. --gap-after K --gap-size G makes the
batch after the K-th jump G sequence numbers (a simulated loss; no events are actually dropped).

Stdout (text, the default), one record per line, a space between fields, then "end":
  endpoint <the bound endpoint, the port resolved when --bind used '*'>
  namespace <--namespace, echoed: the namespace the router hashes under>
  block_size <n>
  extra <the common::HashBlock extra of every block: "lora:<id>"> (only with --lora-id)
  medium <GPU|CPU|...>
  chain <index> <live_blocks> <token id> <token id> ...
      live_blocks: how many of the chain's leading blocks the engine holds at the end; the
      Strata keys are common::HashChain(namespace id, "", tokens, block_size, extra), and the first
      live_blocks of them should be indexed for the node, the rest not.
  sequences <first> <last>
  gap <expected> <got> <lost>   (only with --gap-size)
  batches <number of batches published>
  end
--output json prints the same as one JSON object instead. Exit 0 after publishing (the socket
lingers until queued messages are sent); exit 1 when no subscriber came within --wait-timeout.
"""

import argparse
import hashlib
import json
import random
import sys
import time

import msgpack
import zmq


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", required=True,
                   help="XPUB endpoint, e.g. tcp://127.0.0.1:5557 or tcp://127.0.0.1:* (any port)")
    p.add_argument("--topic", default="kv-events", help="topic frame (vLLM's default is empty)")
    p.add_argument("--namespace", default="default", help="echoed on stdout for the consumer")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--blocks-per-chain", type=int, default=4)
    p.add_argument("--shared-prefix-blocks", type=int, default=0)
    p.add_argument("--events-per-chain", type=int, default=2,
                   help="BlockStored events a chain's blocks are split into (parents link them)")
    p.add_argument("--clear-after", type=int, default=None,
                   help="publish AllBlocksCleared after this many chains are stored")
    p.add_argument("--remove-chains", type=int, default=0,
                   help="publish BlockRemoved for the own blocks of the last N chains")
    p.add_argument("--gap-after", type=int, default=0, help="batches sent before the sequence gap")
    p.add_argument("--gap-size", type=int, default=0, help="sequence numbers skipped (0: no gap)")
    p.add_argument("--start-sequence", type=int, default=0)
    p.add_argument("--hash-format", choices=["int", "negint", "bytes"], default="int",
                   help="engine block hashes as uint64, as signed int64 (old vLLM), or 32 bytes")
    p.add_argument("--event-format", choices=["array", "map"], default="array",
                   help="array: tagged arrays (vLLM <= 0.23); map: tagged maps (later vLLM)")
    p.add_argument("--lora-id", type=int, default=None)
    p.add_argument("--medium", default="GPU",
                   help="medium of the stored/removed blocks; 'none': nil")
    p.add_argument("--data-parallel-rank", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--wait-timeout", type=float, default=30.0,
                   help="seconds to wait for a subscriber before giving up")
    p.add_argument("--output", choices=["text", "json"], default="text")
    a = p.parse_args()
    if a.block_size < 1 or a.blocks_per_chain < 1 or a.chains < 0 or a.events_per_chain < 1:
        p.error("--block-size, --blocks-per-chain and --events-per-chain must be >= 1")
    if not 0 <= a.shared_prefix_blocks <= a.blocks_per_chain:
        p.error("--shared-prefix-blocks must be in [0, --blocks-per-chain]")
    if not 0 <= a.remove_chains <= a.chains:
        p.error("--remove-chains must be in [0, --chains]")
    if a.gap_size < 0 or (a.gap_size and a.gap_after < 1):
        p.error("--gap-size needs --gap-after >= 1 (the first batch only sets the sequence)")
    return a


class Engine:
    """The engine's block hashes and cached set, as vLLM's prefix cache would have them."""

    def __init__(self, args):
        self.args = args
        self.live = set()  # engine hashes currently cached

    def block_hash(self, parent, tokens):
        # Any stable function of (parent, tokens, extra) does: Strata rehashes the token ids.
        h = hashlib.sha256(repr((parent, tuple(tokens), self.args.lora_id)).encode()).digest()
        fmt = self.args.hash_format
        if fmt == "bytes":
            return h
        value = int.from_bytes(h[:8], "big")
        if fmt == "negint" and value >= 1 << 63:
            value -= 1 << 64  # what Python's hash() produced in old vLLM
        return value

    def medium(self):
        return None if self.args.medium.lower() == "none" else self.args.medium

    def stored(self, hashes, parent, tokens):
        a = self.args
        fields = {"block_hashes": hashes, "parent_block_hash": parent, "token_ids": tokens,
                  "block_size": a.block_size, "lora_id": a.lora_id, "medium": self.medium(),
                  "lora_name": None if a.lora_id is None else "adapter-%d" % a.lora_id}
        self.live.update(hashes)
        return self.event("BlockStored", fields)

    def removed(self, hashes):
        self.live.difference_update(hashes)
        return self.event("BlockRemoved", {"block_hashes": hashes, "medium": self.medium()})

    def cleared(self):
        self.live.clear()
        return self.event("AllBlocksCleared", {})

    def event(self, tag, fields):
        if self.args.event_format == "map":
            return dict({"type": tag}, **fields)
        return [tag] + list(fields.values())


def plan(args):
    """Returns (chains' token ids, chains' engine hashes, list of batches' event lists)."""
    rng = random.Random(args.seed)
    bs = args.block_size
    shared = [rng.randrange(args.vocab) for _ in range(args.shared_prefix_blocks * bs)]
    tokens = []
    for _ in range(args.chains):
        own_tokens = (args.blocks_per_chain - args.shared_prefix_blocks) * bs
        own = [rng.randrange(args.vocab) for _ in range(own_tokens)]
        tokens.append(shared + own)
    engine = Engine(args)
    hashes = []
    for t in tokens:
        chain, parent = [], None
        for b in range(args.blocks_per_chain):
            parent = engine.block_hash(parent, t[b * bs:(b + 1) * bs])
            chain.append(parent)
        hashes.append(chain)

    batches = []
    for c in range(args.chains):
        if args.clear_after is not None and c == args.clear_after:
            batches.append([engine.cleared()])
        first = 0  # the engine stores only blocks it does not hold yet
        while first < args.blocks_per_chain and hashes[c][first] in engine.live:
            first += 1
        todo = list(range(first, args.blocks_per_chain))
        parts = max(1, min(args.events_per_chain, len(todo)))
        for p in range(parts):
            idx = todo[p * len(todo) // parts:(p + 1) * len(todo) // parts]
            if not idx:
                continue
            parent = hashes[c][idx[0] - 1] if idx[0] > 0 else None
            batches.append([engine.stored([hashes[c][i] for i in idx], parent,
                                          tokens[c][idx[0] * bs:(idx[-1] + 1) * bs])])
    if args.clear_after is not None and args.clear_after >= args.chains:
        batches.append([engine.cleared()])
    for c in range(args.chains - args.remove_chains, args.chains):
        own = [h for h in hashes[c][args.shared_prefix_blocks:] if h in engine.live]
        if own:
            batches.append([engine.removed(own)])

    live_blocks = []
    for c in range(args.chains):
        n = 0
        while n < args.blocks_per_chain and hashes[c][n] in engine.live:
            n += 1
        live_blocks.append(n)
    return tokens, live_blocks, batches


def sequences(args, count):
    seqs, seq = [], args.start_sequence
    for i in range(count):
        if args.gap_size and i == args.gap_after:
            seq += args.gap_size
        seqs.append(seq)
        seq += 1
    return seqs


def report(args, endpoint, tokens, live_blocks, seqs):
    gap = None
    if args.gap_size and 0 < args.gap_after < len(seqs):
        expected = seqs[args.gap_after - 1] + 1
        gap = (expected, seqs[args.gap_after], args.gap_size)
    info = {
        "endpoint": endpoint, "namespace": args.namespace, "block_size": args.block_size,
        "extra": None if args.lora_id is None else "lora:%d" % args.lora_id,
        "medium": args.medium,
        "chains": [{"index": c, "live_blocks": live_blocks[c], "token_ids": tokens[c]}
                   for c in range(len(tokens))],
        "sequences": [seqs[0], seqs[-1]] if seqs else None,
        "gap": None if gap is None else {"expected": gap[0], "got": gap[1], "lost": gap[2]},
        "batches": len(seqs),
    }
    if args.output == "json":
        print(json.dumps(info))
    else:
        out = ["endpoint %s" % endpoint, "namespace %s" % args.namespace,
               "block_size %d" % args.block_size]
        if info["extra"] is not None:
            out.append("extra %s" % info["extra"])
        out.append("medium %s" % args.medium)
        for c in info["chains"]:
            ids = " ".join(map(str, c["token_ids"]))
            out.append("chain %d %d %s" % (c["index"], c["live_blocks"], ids))
        if seqs:
            out.append("sequences %d %d" % (seqs[0], seqs[-1]))
        if gap is not None:
            out.append("gap %d %d %d" % gap)
        out.append("batches %d" % len(seqs))
        out.append("end")
        print("\n".join(out))
    sys.stdout.flush()


def main():
    args = parse_args()
    tokens, live_blocks, batches = plan(args)
    seqs = sequences(args, len(batches))

    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 100000)
    sock.bind(args.bind)
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    report(args, endpoint, tokens, live_blocks, seqs)

    # XPUB hands subscriptions up as messages (b"\x01" + topic prefix): the first one means a
    # subscriber is connected and matching, so what is sent from now on reaches it.
    if not sock.poll(int(args.wait_timeout * 1000), zmq.POLLIN):
        print("vllm_publisher: no subscriber within %.1fs" % args.wait_timeout, file=sys.stderr)
        sock.close(linger=0)
        ctx.term()
        return 1
    sock.recv()

    packer = msgpack.Packer(use_bin_type=True)
    topic = args.topic.encode()
    for seq, events in zip(seqs, batches):
        batch = [time.time(), events, args.data_parallel_rank]
        sock.send_multipart([topic, seq.to_bytes(8, "big"), packer.pack(batch)])
    sock.close(linger=int(args.wait_timeout * 1000))
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
