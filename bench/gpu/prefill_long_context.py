#!/usr/bin/env python3
"""Measures prefill time of a Llama-3-8B-shaped model on a GPU where the calibration set has no rows:
chunks of n new tokens after c cached ones with c up to 64k and n up to 8192 (the replay's chunked
prefill reaches there; the shared calibration's rows with c > 0 stop at n = 2048, c = 32768).

One decoder layer with random bf16 weights (hidden 4096, 32 heads, 8 KV heads, head_dim 128, MLP
14336, RMSNorm, SwiGLU), attention through SDPA with GQA and a bottom-right causal mask over the
cached + new keys (what a paged-attention prefill computes), timed with CUDA events (median of 10
after 3 warm-ups) and multiplied by 32 layers. Rows that repeat the shared calibration's
(c, n) points are included so the two sets can be compared.

  python3 bench/gpu/prefill_long_context.py > rows.json    (on a machine with a GPU and PyTorch)
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

H, NH, KVH, D, MLP, LAYERS = 4096, 32, 8, 128, 14336, 32
dev = torch.device("cuda")
dt = torch.bfloat16
g = torch.Generator(device=dev).manual_seed(0)


def w(*shape):
    return (torch.randn(*shape, device=dev, dtype=dt, generator=g) * 0.02)


Wq, Wk, Wv, Wo = w(H, NH * D), w(H, KVH * D), w(H, KVH * D), w(NH * D, H)
Wg, Wu, Wd = w(H, MLP), w(H, MLP), w(MLP, H)
n1 = torch.ones(H, device=dev, dtype=dt)
n2 = torch.ones(H, device=dev, dtype=dt)


def rms(x, weight):
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype) * weight


def layer(x, k_cache, v_cache):
    n = x.shape[1]
    h = rms(x, n1)
    q = (h @ Wq).view(1, n, NH, D).transpose(1, 2)
    k = (h @ Wk).view(1, n, KVH, D).transpose(1, 2)
    v = (h @ Wv).view(1, n, KVH, D).transpose(1, 2)
    if k_cache is not None:
        k = torch.cat([k_cache, k], dim=2)
        v = torch.cat([v_cache, v], dim=2)
    mask = causal_lower_right(n, k.shape[2])
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    x = x + a.transpose(1, 2).reshape(1, n, NH * D) @ Wo
    h = rms(x, n2)
    return x + (F.silu(h @ Wg) * (h @ Wu)) @ Wd


def time_ms(c, n):
    x = torch.randn(1, n, H, device=dev, dtype=dt, generator=g)
    kc = torch.randn(1, KVH, c, D, device=dev, dtype=dt, generator=g) if c else None
    vc = torch.randn(1, KVH, c, D, device=dev, dtype=dt, generator=g) if c else None
    out = None
    for _ in range(3):
        out = layer(x, kc, vc)
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), "non-finite output"
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        layer(x, kc, vc)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def main():
    rows = []
    points = [(0, 512), (0, 2048), (0, 8192), (0, 16384), (8192, 512), (8192, 2048),
              (16384, 512), (32768, 512)]
    for c in (8192, 16384, 32768, 65536, 131072):
        for n in (2048, 8192):
            if (c, n) not in points:
                points.append((c, n))
    for c, n in points:
        ms = time_ms(c, n)
        rows.append({"kind": "prefill", "cached_tokens": c, "new_tokens": n,
                     "ms_per_layer": round(ms, 4), "ms_model": round(ms * LAYERS, 3)})
        print(f"c={c:6d} n={n:5d}: {ms * LAYERS:9.2f} ms", file=sys.stderr, flush=True)
    print(json.dumps({
        "about": "Prefill of one Llama-3-8B-shaped layer (random bf16 weights) x 32, SDPA with GQA "
                 "and a bottom-right causal mask over cached + new keys; median of 10 after 3 "
                 "warm-ups, CUDA events; bench/gpu/prefill_long_context.py",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
