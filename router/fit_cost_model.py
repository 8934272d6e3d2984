#!/usr/bin/env python3
"""Fits the router's prefill model to a calibration file and prints the "prefill" object of
router/cost_model_h100_llama3_8b.json (paste it there, and the coefficients into
CostModel::Default() in router/cost_model.cc).

Model: t(c, n) = t0 + a*n + b*n*c + g*n^2 ms for n new tokens after c cached ones, fitted by
ordinary least squares to the rows of compute_ms whose kind is "prefill" (ms_model column).
Standard library only.

  python3 router/fit_cost_model.py ../shared/calibration/h100-llama3-8b.json
"""
import json
import math
import os
import sys


def solve(m, v):
    """Gaussian elimination with partial pivoting; m is n x n, v has n entries."""
    n = len(m)
    aug = [row[:] + [v[i]] for i, row in enumerate(m)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(aug[r][i]))
        aug[i], aug[p] = aug[p], aug[i]
        for r in range(n):
            if r != i:
                f = aug[r][i] / aug[i][i]
                for k in range(i, n + 1):
                    aug[r][k] -= f * aug[i][k]
    return [aug[i][n] / aug[i][i] for i in range(n)]


def main(path):
    with open(path) as f:
        cal = json.load(f)
    rows = [r for r in cal["compute_ms"] if r["kind"] == "prefill"]
    # Columns scaled so the normal equations are well conditioned; unscaled afterwards.
    scale = [1.0, 1e3, 1e7, 1e7]
    xs = []
    for r in rows:
        n, c = r["new_tokens"], r["cached_tokens"]
        xs.append([v / s for v, s in zip([1.0, n, n * c, n * n], scale)])
    ys = [r["ms_model"] for r in rows]
    ata = [[sum(x[j] * x[k] for x in xs) for k in range(4)] for j in range(4)]
    aty = [sum(x[j] * y for x, y in zip(xs, ys)) for j in range(4)]
    t0, a, b, g = [c / s for c, s in zip(solve(ata, aty), scale)]

    src = os.path.basename(path)
    out_rows, sq, max_abs, max_rel = [], 0.0, 0.0, 0.0
    for r in rows:
        n, c = r["new_tokens"], r["cached_tokens"]
        fitted = t0 + a * n + b * n * c + g * n * n
        res = r["ms_model"] - fitted
        sq += res * res
        max_abs = max(max_abs, abs(res))
        max_rel = max(max_rel, abs(res) / r["ms_model"])
        out_rows.append({"cached_tokens": c, "new_tokens": n, "measured_ms": r["ms_model"],
                         "fitted_ms": round(fitted, 2), "residual_ms": round(res, 2)})
    frm = f"{src} compute_ms, kind prefill ({len(rows)} rows, ms_model): least-squares fit"
    print(json.dumps({
        "formula": "t(c, n) = t0 + a*n + b*n*c + g*n^2 ms; c cached tokens, n new tokens",
        "fit": f"ordinary least squares over the {len(rows)} prefill rows of {src} compute_ms "
               "(ms_model); router/fit_cost_model.py",
        "t0_ms": {"value": t0, "from": frm},
        "a_ms": {"value": a, "from": frm},
        "b_ms": {"value": b, "from": frm},
        "g_ms": {"value": g, "from": frm},
        "rows": out_rows,
        "rms_residual_ms": round(math.sqrt(sq / len(rows)), 2),
        "max_abs_residual_ms": round(max_abs, 2),
        "max_relative_residual": round(max_rel, 3),
    }, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
