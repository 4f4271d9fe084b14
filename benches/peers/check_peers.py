#!/usr/bin/env python3
"""Correctness checks of the stiff peers' gradients (not timings); exit 1 on a failure.

    .venv-jaxley/bin/python check_peers.py fd-jaxley
        Jaxley's recorded cable gradient (per mS/cm^2, order gNa, gK, gLeak by compartment)
        against central differences of Jaxley's own loss, on the quick 100-compartment
        cable: checks the unit conversion and the ordering that peer_jaxley.py applies.
    python3 check_peers.py agree results/peers.json
        The Robertson gradients of CVODES (CasADi) and Kvaerno5 (diffrax), two unrelated
        solvers, against each other: relative difference below 1e-2 at rtol 1e-6 and below
        1e-5 at rtol 1e-8 (both solve the same ODE; they differ by their tolerances).
"""
import json
import math
import sys

BOUNDS = {"robertson_1e-6": 1e-2, "robertson_1e-8": 1e-5}


def rel_diff(a, b):
    scale = max(abs(x) for x in b) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def agree(path):
    with open(path) as f:
        recs = json.load(f)["records"]
    failed = False
    for problem, bound in BOUNDS.items():
        by = {r["engine"]: r for r in recs if r.get("problem") == problem and "grad" in r
              and r.get("engine") in ("casadi", "diffrax")}
        if len(by) < 2:
            print(f"{problem}: needs casadi and diffrax records with a gradient; skipped")
            continue
        g1, g2 = by["casadi"]["grad"], by["diffrax"]["grad"]
        if not all(isinstance(x, float) and math.isfinite(x) for x in g1 + g2):
            print(f"{problem}: FAIL non-finite gradient")
            failed = True
            continue
        d = rel_diff(g1, g2)
        ok = d < bound
        failed |= not ok
        print(f"{problem}: casadi vs diffrax max rel. difference {d:.2e} "
              f"({'ok' if ok else 'FAIL'}, bound {bound:g})")
    return failed


def fd_jaxley():
    sys.argv = [sys.argv[0], "--quick"]
    import jax
    import jax.numpy as jnp
    import common
    import peer_jaxley as pj

    n = 100
    dt, t_end = common.CABLE_DT, common.cable_t_end(True)
    branch, _ = pj.build_cable(n, t_end)
    params = branch.get_parameters()

    def loss(p):
        return jnp.sum(pj.jx.integrate(branch, params=p, delta_t=dt, t_max=t_end)[0])
    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    flat = pj.flat_grad(grads)
    floss = jax.jit(loss)
    failed = False
    # (entry of the flat gradient, trainable, compartment)
    picks = ((0, "HH_gNa", 0), (n + 50, "HH_gK", 50), (3 * n - 1, "HH_gLeak", n - 1))
    for idx, key, comp in picks:
        which = pj.TRAINABLE.index(key)
        base = float(params[which][key][comp])  # S/cm^2
        h = 1e-4 * base
        vals = []
        for sign in (1.0, -1.0):
            p = [dict(d) for d in params]
            p[which][key] = params[which][key].at[comp].set(base + sign * h)
            vals.append(float(floss(p)))
        fd_per_S = (vals[0] - vals[1]) / (2 * h)
        fd = fd_per_S / pj.MS_PER_S
        err = abs(fd - float(flat[idx])) / max(abs(fd), 1e-300)
        ok = err < 1e-5
        failed |= not ok
        print(f"jaxley hh_cable_100 (quick) grad[{idx}] = d loss / d {key}[{comp}] per mS/cm^2: "
              f"adjoint {float(flat[idx]):.9g}, central difference {fd:.9g}, rel. error "
              f"{err:.1e} ({'ok' if ok else 'FAIL'})")
    print(f"loss {float(value):.6f}")
    return failed


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "fd-jaxley":
        failed = fd_jaxley()
    elif len(sys.argv) == 3 and sys.argv[1] == "agree":
        failed = agree(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
