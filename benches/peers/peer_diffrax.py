"""diffrax peer: Euler (constant dt = 0.01) and Dopri5 / Tsit5 (PID controller,
rtol = atol = 1e-8), differentiated with
  * RecursiveCheckpointAdjoint(checkpoints=max_steps) (discretise-then-optimise: reverse
    mode through the solver loop). diffrax's documentation: "it makes sense to set as many
    checkpoints as you have memory for"; with checkpoints = max_steps every step is stored
    and nothing is recomputed -- diffrax's best configuration for these problems. The
    default (checkpoints=None -> log(max_steps) checkpoints, O(n log n) recomputation) is
    kept as a second row on hh_seed_final, and
  * BacksolveAdjoint (optimise-then-discretise continuous adjoint that integrates the state
    backwards together with the adjoint).
The vector fields are the same JAX functions as in peer_jax.py.

Robertson (robertson_1e-6, robertson_1e-8): Kvaerno5 (5th-order ESDIRK, diffrax's
recommendation for stiff problems, as in its Robertson example) with a PIDController at the
problem's rtol/atol, the initial step chosen by diffrax (dt0=None), its root finder at the
default (VeryChord with the controller's tolerances), and RecursiveCheckpointAdjoint with one
checkpoint per step taken; gradient of y3(T) w.r.t. k and y0.
"""
import time

import common

common.limit_threads()
ENGINE = "diffrax"

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import diffrax as dfx
    from peer_jax import hh_rhs, make_net_rhs
except Exception as e:  # noqa: BLE001
    common.fatal(ENGINE, "import failed: %r" % e)


def blocked(x):
    return jax.block_until_ready(x)


def make_loss(rhs, u0, t_end, solver, controller, dt0, adjoint, max_steps, all_steps,
              n_grid=None, e_only=False):
    """e_only: the final loss sums only the E_i (every 4th component), the networks' loss."""
    term = dfx.ODETerm(lambda t, y, args: rhs(y, args))
    if all_steps:
        if isinstance(adjoint, dfx.BacksolveAdjoint):
            # BacksolveAdjoint cannot save at solver steps; save on the Euler grid instead
            saveat = dfx.SaveAt(ts=jnp.linspace(0.0, t_end, n_grid + 1))
        else:
            saveat = dfx.SaveAt(t0=True, steps=True)
    else:
        saveat = dfx.SaveAt(t1=True)

    def solve(p):
        return dfx.diffeqsolve(term, solver, 0.0, t_end, dt0, u0, args=p, saveat=saveat,
                               stepsize_controller=controller, adjoint=adjoint,
                               max_steps=max_steps)

    def loss(p):
        ys = solve(p).ys
        if all_steps:
            # unused step slots are padded with inf: drop them
            return jnp.sum(jnp.where(jnp.isfinite(ys), ys, 0.0))
        return jnp.sum(ys[-1][0::4]) if e_only else jnp.sum(ys[-1])
    return loss, jax.jit(solve)


def bench(b, problem, method, rhs, u0, p0, t_end, solver, controller, dt0, adjoint,
          max_steps, all_steps, extra, n_grid=None):
    if not b.wanted(problem):
        return
    u0 = jnp.asarray(u0, dtype=jnp.float64)
    p0 = jnp.asarray(p0, dtype=jnp.float64)
    try:
        loss, solve = make_loss(rhs, u0, t_end, solver, controller, dt0, adjoint, max_steps,
                                all_steps, n_grid, e_only=problem.startswith("hh_network"))
        stats = solve(p0).stats
        extra = dict(extra)
        extra["num_steps"] = int(stats["num_steps"])
        extra["num_rejected_steps"] = int(stats.get("num_rejected_steps", 0))
        extra["max_steps"] = max_steps
    except Exception as e:  # noqa: BLE001
        b.error(problem, method, common.error_text(e))
        return
    fwd = jax.jit(loss)
    vg = jax.jit(jax.value_and_grad(loss))
    b.run(problem, method, lambda: float(blocked(fwd(p0))),
          lambda: tuple(map(jax.device_get, blocked(vg(p0)))), extra=extra)


def count_steps(rhs, u0, p0, t_end, solver, controller, dt0, limit=1_000_000):
    """Steps (accepted + rejected) of one forward solve."""
    term = dfx.ODETerm(lambda t, y, args: rhs(y, args))
    sol = jax.jit(lambda p: dfx.diffeqsolve(
        term, solver, 0.0, t_end, dt0, jnp.asarray(u0, dtype=jnp.float64), args=p,
        saveat=dfx.SaveAt(t1=True), stepsize_controller=controller, max_steps=limit))(
        jnp.asarray(p0, dtype=jnp.float64))
    return int(sol.stats["num_steps"])


def rc_all(max_steps):
    """RecursiveCheckpointAdjoint storing every step (no recomputation)."""
    return (dfx.RecursiveCheckpointAdjoint(checkpoints=max_steps),
            "RecursiveCheckpointAdjoint(checkpoints=%d): every step stored" % max_steps)


def robertson_loss(t_end, rtol, atol, adjoint, max_steps):
    """loss(q), q = [k1, k2, k3, y0_1, y0_2, y0_3] -> y3(t_end); and the jitted solve."""
    term = dfx.ODETerm(lambda t, y, k: jnp.stack(common.robertson_rhs(y, k)))
    solver = dfx.Kvaerno5()
    pid = dfx.PIDController(rtol=rtol, atol=atol)

    def solve(q):
        return dfx.diffeqsolve(term, solver, 0.0, t_end, None, q[3:], args=q[:3],
                               saveat=dfx.SaveAt(t1=True), stepsize_controller=pid,
                               adjoint=adjoint, max_steps=max_steps)

    def loss(q):
        return solve(q).ys[-1][2]
    return loss, jax.jit(solve)


def bench_robertson(b, problem):
    if not b.wanted(problem):
        return
    rtol, atol = common.ROBERTSON_TOLS[problem]
    t_end = common.robertson_t_end(b.quick)
    method = "kvaerno5_RecursiveCheckpointAdjoint"
    q0 = jnp.asarray(common.ROBERTSON_K + common.ROBERTSON_Y0, dtype=jnp.float64)
    try:
        # One forward solve (default adjoint: nothing stored per step) to size the store:
        # max_steps = checkpoints = the steps taken (accepted + rejected) plus 5 %.
        _, solve = robertson_loss(t_end, rtol, atol, dfx.RecursiveCheckpointAdjoint(),
                                  1_000_000)
        stats = solve(q0).stats
        taken = int(stats["num_steps"])
        max_steps = taken + max(16, taken // 20)
        adjoint = dfx.RecursiveCheckpointAdjoint(checkpoints=max_steps)
        loss, solve = robertson_loss(t_end, rtol, atol, adjoint, max_steps)
        stats = solve(q0).stats
        steps = {"accepted": int(stats["num_accepted_steps"]),
                 "rejected": int(stats["num_rejected_steps"]),
                 "total": int(stats["num_steps"])}
    except Exception as e:  # noqa: BLE001
        b.error(problem, method, common.error_text(e))
        return
    fwd = jax.jit(loss)
    vg = jax.jit(jax.value_and_grad(loss))
    b.run(problem, method, lambda: float(blocked(fwd(q0))),
          lambda: tuple(map(jax.device_get, blocked(vg(q0)))),
          extra={"rtol": rtol, "atol": atol, "t_end": t_end, "dt0": "auto (dt0=None)",
                 "max_steps": max_steps, "steps": steps,
                 "grad_order": common.ROBERTSON_GRAD_ORDER,
                 "config": "Kvaerno5 (root finder VeryChord at the controller's tolerances), "
                           "PIDController(rtol=%g, atol=%g), RecursiveCheckpointAdjoint("
                           "checkpoints=%d): every step stored" % (rtol, atol, max_steps)})


def main():
    b = common.Bench(ENGINE, lambda: "diffrax %s / equinox %s / jax %s" % (
        dfx.__version__, __import__("equinox").__version__, jax.__version__))
    dt = common.HH_DT
    n_hh = common.n_steps(b.t_hh)
    bs = dfx.BacksolveAdjoint()
    bs_config = "BacksolveAdjoint() (continuous adjoint, state integrated backwards)"
    const = dfx.ConstantStepSize()
    for problem, all_steps in (("hh_seed_final", False), ("hh_seed_all_steps", True)):
        rc, rc_config = rc_all(n_hh + 1)
        runs = [("RecursiveCheckpointAdjoint", rc, rc_config),
                ("BacksolveAdjoint", bs, bs_config)]
        if problem == "hh_seed_final":
            runs.insert(1, ("RecursiveCheckpointAdjoint_default", dfx.RecursiveCheckpointAdjoint(),
                            "RecursiveCheckpointAdjoint() default: log(max_steps) checkpoints, "
                            "O(n log n) recomputation"))
        for name, adj, config in runs:
            bench(b, problem, "euler_" + name, hh_rhs, common.HH_U0, common.HH_P, b.t_hh,
                  dfx.Euler(), const, dt, adj, n_hh + 1, all_steps,
                  {"dt": dt, "n_steps_expected": n_hh, "config": "Euler, " + config},
                  n_grid=n_hh)

    pid = dfx.PIDController(rtol=1e-8, atol=1e-8)
    for sname, solver in (("dopri5", dfx.Dopri5()), ("tsit5", dfx.Tsit5())):
        if not b.wanted("hh_dopri5_final"):
            break
        # Size the checkpoint store to this solve: max_steps = checkpoints = the steps the
        # forward solve takes (accepted + rejected, about 10 000 on the full problem) plus
        # 5 %, so every step is kept and no memory is wasted on unused slots.
        try:
            n_steps = count_steps(hh_rhs, common.HH_U0, common.HH_P, b.t_hh, solver, pid, 1e-3)
        except Exception as e:  # noqa: BLE001
            b.error("hh_dopri5_final", sname + "_RecursiveCheckpointAdjoint",
                    common.error_text(e))
            continue
        max_ad = n_steps + max(16, n_steps // 20)
        rc, rc_config = rc_all(max_ad)
        # BacksolveAdjoint keeps nothing per step; its backward solve gets a generous
        # max_steps so that a failure there is the backward instability, not the limit.
        for name, adj, config, ms in (("RecursiveCheckpointAdjoint", rc, rc_config, max_ad),
                                      ("BacksolveAdjoint", bs, bs_config, 100_000)):
            bench(b, "hh_dopri5_final", sname + "_" + name, hh_rhs, common.HH_U0, common.HH_P,
                  b.t_hh, solver, pid, 1e-3, adj, ms, False,
                  {"rtol": 1e-8, "atol": 1e-8, "dt0": 1e-3,
                   "config": "%s, PIDController(1e-8, 1e-8), %s" % (solver.__class__.__name__,
                                                                      config)})

    n_net = common.n_steps(b.t_net)
    rc, rc_config = rc_all(n_net + 1)
    for N in common.NET_NS:
        bench(b, "hh_network_%d" % N, "euler_RecursiveCheckpointAdjoint", make_net_rhs(N),
              common.net_u0(N), common.net_params(N), b.t_net, dfx.Euler(), const, dt, rc,
              n_net + 1, False, {"dt": dt, "n_steps_expected": n_net,
                                 "config": "Euler, " + rc_config})
    for problem in common.ROBERTSON_TOLS:
        bench_robertson(b, problem)


if __name__ == "__main__":
    t0 = time.time()
    main()
