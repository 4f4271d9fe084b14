"""Jaxley peer: the HH cable (hh_cable_100, hh_cable_1000) as a `jx.Branch` of n
compartments with Jaxley's own `HH` channel, integrated by `jx.integrate` with its default
solver (`bwd_euler`: exponential-Euler gates, then an implicit-Euler voltage step solved by
Jaxley's tridiagonal DHS solver), dt = 0.025 ms, and differentiated by JAX reverse mode:
  * `bwd_euler` -- `jax.jit(jax.value_and_grad)` through `jx.integrate` with its defaults
    (no checkpointing: every step's residuals stored), Jaxley's default configuration;
  * `bwd_euler_checkpointed` -- the same with `checkpoint_lengths=[a, b]`, a * b = the
    number of steps, a ~ sqrt: Jaxley's documented way to cut the memory of long
    simulations (nested `jax.checkpoint`ed scans).
Geometry, channel parameters, stimulus and loss as in README.md ("HH cable").  Runs in its
own virtual environment (.venv-jaxley, requirements-jaxley.txt).
"""
import contextlib
import math
import sys
import time

import common

common.limit_threads()
ENGINE = "jaxley"

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp
    with contextlib.redirect_stdout(sys.stderr):
        import jaxley as jx
        from jaxley.channels import HH
        from jaxley.utils.cell_utils import params_to_pstate
    from peer_jax import blocked, mem_analysis
except Exception as e:  # noqa: BLE001
    common.fatal(ENGINE, "import failed: %r" % e)

# Jaxley's HH channel takes conductances in S/cm^2; revode's spec has mS/cm^2.  Dividing
# (36 / 1000) gives Jaxley's own literals (0.036) exactly; multiplying by 1e-3 would not.
MS_PER_S = 1000.0
TRAINABLE = ("HH_gNa", "HH_gK", "HH_gLeak")


def build_cable(n, t_end):
    """The cable as revode's spec defines it; Jaxley prints progress, which goes to stderr
    so that stdout carries only the JSON records."""
    dt = common.CABLE_DT
    with contextlib.redirect_stdout(sys.stderr):
        branch = jx.Branch(jx.Compartment(), ncomp=n)
        branch.set("length", common.CABLE_LENGTH_UM)
        branch.set("radius", common.CABLE_RADIUS_UM)
        branch.set("axial_resistivity", common.CABLE_RA_OHM_CM)
        branch.set("capacitance", common.CABLE_CM_UF_CM2)
        branch.insert(HH())
        g, e = common.CABLE_G_MS_CM2, common.CABLE_E_MV
        for name in ("gNa", "gK", "gLeak"):
            branch.set("HH_" + name, g[name] / MS_PER_S)
        for name in ("eNa", "eK", "eLeak"):
            branch.set("HH_" + name, e[name])
        branch.set("v", common.CABLE_V0)
        branch.init_states(delta_t=dt)  # gates at their steady state at V0
        on, off = common.CABLE_STIM_ON, common.CABLE_STIM_OFF
        current = jx.step_current(on, off - on, common.CABLE_STIM_NA, dt, t_end)
        branch.comp(0).stimulate(current)
        branch.comp(n - 1).record("v")
        for key in TRAINABLE:  # one parameter per compartment: 3n in all
            branch.comp("all").make_trainable(key, verbose=False)
    return branch, current


def model_facts(branch, current, n):
    """What Jaxley actually set up, checked against the spec (returned for the record)."""
    nodes = branch.nodes
    on = jax.device_get(jnp.nonzero(current)[0])
    gates = common.hh1952_steady_gates(common.CABLE_V0)
    facts = {
        "jaxley_nodes_first_compartment": {
            k: float(nodes[k].iloc[0]) for k in
            ("length", "radius", "area", "axial_resistivity", "capacitance", "v", "HH_gNa",
             "HH_gK", "HH_gLeak", "HH_eNa", "HH_eK", "HH_eLeak", "HH_m", "HH_h", "HH_n")},
        "init_gates_max_abs_diff_from_spec": max(
            float(abs(nodes[k] - want).max()) for k, want in zip(("HH_m", "HH_h", "HH_n"), gates)),
        "stimulus_on_indices": [int(on[0]), int(on[-1])] if len(on) else [],
        "stimulus_note": "jx.step_current: entry k is the current of the step t_k -> t_k+1",
    }
    same = all(float(nodes[k].std()) == 0.0 for k in ("length", "radius", "HH_gNa"))
    facts["compartments_identical"] = bool(same) and len(nodes) == n
    # Jaxley's axial coupling between neighbours, already divided by area and C_m (1/ms):
    # the spec's g_ax / (area C_m) = pi r^2 / (Ra L area C_m) = 500 /ms.
    branch.to_jax()
    pstate = params_to_pstate(branch.get_parameters(), branch.indices_set_by_trainables)
    axial = jax.device_get(branch.get_all_parameters(pstate)["axial_conductances"]["v"])
    facts["axial_per_ms"] = {"min": float(axial.min()), "max": float(axial.max()),
                             "directed_edges": int(axial.size),
                             "spec": common.cable_axial_per_ms()}
    return facts


def divisor_pair(steps):
    """[a, b] with a * b = steps and b the largest divisor <= sqrt(steps)."""
    b = max(d for d in range(1, int(math.isqrt(steps)) + 1) if steps % d == 0)
    return [steps // b, b]


def flat_grad(grads):
    """Jaxley's gradient (list of {name: per-compartment array} in TRAINABLE order) per
    mS/cm^2, flattened as gNa[0..n-1], gK[...], gLeak[...]."""
    parts = []
    for key, g in zip(TRAINABLE, grads):
        parts.append(jnp.asarray(g[key]).reshape(-1))
    return jax.device_get(jnp.concatenate(parts) / MS_PER_S)


def bench_cable(b, n):
    problem = "hh_cable_%d" % n
    if not b.wanted(problem):
        return
    dt = common.CABLE_DT
    t_end = common.cable_t_end(b.quick)
    steps = int(round(t_end / dt))
    try:
        t0 = time.perf_counter()
        branch, current = build_cable(n, t_end)
        params = branch.get_parameters()
        build_ms = 1000 * (time.perf_counter() - t0)
        facts = model_facts(branch, current, n)
    except Exception as e:  # noqa: BLE001
        b.error(problem, "bwd_euler", common.error_text(e))
        return
    variants = [("bwd_euler", None,
                 "jx.integrate(solver='bwd_euler', voltage_solver='jaxley.dhs' (CPU: "
                 "jaxley.dhs.cpu)), jax.jit(jax.value_and_grad), no checkpointing")]
    pair = divisor_pair(steps)
    variants.append(("bwd_euler_checkpointed", pair,
                     "as bwd_euler with checkpoint_lengths=%s (nested jax.checkpoint scans)"
                     % pair))
    for method, lengths, config in variants:
        def trace(p, lengths=lengths):
            return jx.integrate(branch, params=p, delta_t=dt, t_max=t_end,
                                checkpoint_lengths=lengths)[0]

        def loss(p, trace=trace):
            return jnp.sum(trace(p))
        fwd = jax.jit(loss)
        vg = jax.jit(jax.value_and_grad(loss))

        def post(trace=trace, vg=vg):
            v = jax.device_get(jax.jit(trace)(params))
            out = {"n_recorded": int(v.shape[0]),
                   "trace_far_end_v": [float(x) for x in v[::common.CABLE_TRACE_EVERY]],
                   "trace_every": common.CABLE_TRACE_EVERY, "trace_dt": dt}
            out.update(mem_analysis(vg, params))
            return out
        b.run(problem, method, lambda fwd=fwd: float(blocked(fwd(params))),
              lambda vg=vg: (lambda lv: (float(lv[0]), flat_grad(lv[1])))(blocked(vg(params))),
              post=post, grad_limit=3 * n,
              extra={"n_compartments": n, "dt": dt, "t_end": t_end, "n_steps": steps,
                     "checkpoint_lengths": lengths, "build_ms": build_ms,
                     "config": config, "model": facts,
                     "grad_order": "gNa[0..n-1], gK[0..n-1], gLeak[0..n-1], per mS/cm^2 "
                                   "(Jaxley's per-S/cm^2 gradient / 1000)",
                     "loss_definition": "sum of the far-end V over the %d recorded values "
                                        "(t = 0 and every step)" % (steps + 1)})


def main():
    b = common.Bench(ENGINE, lambda: "jaxley %s / jax %s / jaxlib %s" % (
        jx.__version__, jax.__version__, __import__("jaxlib").__version__))
    for n in common.CABLE_NS:
        bench_cable(b, n)


if __name__ == "__main__":
    main()
