"""diffrax peer: Euler (constant dt = 0.01) and Dopri5 / Tsit5 (PID controller,
rtol = atol = 1e-8), differentiated with
  * RecursiveCheckpointAdjoint (discretise-then-optimise: reverse mode through the solver
    loop with diffrax's binomial checkpointing), and
  * BacksolveAdjoint (optimise-then-discretise continuous adjoint that integrates the state
    backwards together with the adjoint).
The vector fields are the same JAX functions as in peer_jax.py.
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


def main():
    b = common.Bench(ENGINE, lambda: "diffrax %s / equinox %s / jax %s" % (
        dfx.__version__, __import__("equinox").__version__, jax.__version__))
    dt = common.HH_DT
    n_hh = common.n_steps(b.t_hh)
    rc = dfx.RecursiveCheckpointAdjoint()
    bs = dfx.BacksolveAdjoint()
    euler_extra = {"dt": dt, "n_steps_expected": n_hh}
    const = dfx.ConstantStepSize()
    for problem, all_steps in (("hh_seed_final", False), ("hh_seed_all_steps", True)):
        for name, adj in (("RecursiveCheckpointAdjoint", rc), ("BacksolveAdjoint", bs)):
            bench(b, problem, "euler_" + name, hh_rhs, common.HH_U0, common.HH_P, b.t_hh,
                  dfx.Euler(), const, dt, adj, n_hh + 1, all_steps, euler_extra, n_grid=n_hh)

    pid = dfx.PIDController(rtol=1e-8, atol=1e-8)
    # max_steps bounds RecursiveCheckpointAdjoint's checkpoint schedule; the forward
    # solve needs far fewer steps than this (num_steps is reported)
    max_ad = 100_000
    for sname, solver in (("dopri5", dfx.Dopri5()), ("tsit5", dfx.Tsit5())):
        for name, adj in (("RecursiveCheckpointAdjoint", rc), ("BacksolveAdjoint", bs)):
            bench(b, "hh_dopri5_final", sname + "_" + name, hh_rhs, common.HH_U0, common.HH_P,
                  b.t_hh, solver, pid, 1e-3, adj, max_ad, False,
                  {"rtol": 1e-8, "atol": 1e-8, "dt0": 1e-3})

    n_net = common.n_steps(b.t_net)
    for N in common.NET_NS:
        bench(b, "hh_network_%d" % N, "euler_RecursiveCheckpointAdjoint", make_net_rhs(N),
              common.net_u0(N), common.net_params(N), b.t_net, dfx.Euler(), const, dt, rc,
              n_net + 1, False, {"dt": dt, "n_steps_expected": n_net})


if __name__ == "__main__":
    t0 = time.time()
    main()
