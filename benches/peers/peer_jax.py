"""JAX peer: explicit Euler as a `lax.scan`, differentiated by
  * reverse mode with `jax.checkpoint` on the scan body (JAX's documented recipe for long
    scans: only the carry is stored per step, each step's internals are recomputed on the
    way back) -- JAX's best reverse-mode configuration here,
  * plain reverse mode (jax.grad through the scan: every step's residuals stored),
  * forward mode (jax.jacfwd; for many parameters estimated from a batched JVP chunk).
plus `jax.experimental.ode.odeint` (Dopri5 with its continuous adjoint that integrates the
state backwards) on hh_dopri5_final.
"""
import math
import time

import common

common.limit_threads()
ENGINE = "jax"

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax
except Exception as e:  # noqa: BLE001
    common.fatal(ENGINE, "import failed: %r" % e)

V_T = common.V_T
AREA = common.AREA


def gates(E, m, h, n):
    am = -0.32 * (E - V_T - 13.0) / (jnp.exp(-(E - V_T - 13.0) / 4.0) - 1.0)
    bm = 0.28 * (E - V_T - 40.0) / (jnp.exp((E - V_T - 40.0) / 5.0) - 1.0)
    ah = 0.128 * jnp.exp(-(E - V_T - 17.0) / 18.0)
    bh = 4.0 / (1.0 + jnp.exp(-(E - V_T - 40.0) / 5.0))
    an = -0.032 * (E - V_T - 15.0) / (jnp.exp(-(E - V_T - 15.0) / 5.0) - 1.0)
    bn = 0.5 * jnp.exp(-(E - V_T - 10.0) / 40.0)
    return (am * (1.0 - m) - bm * m, ah * (1.0 - h) - bh * h, an * (1.0 - n) - bn * n)


def hh_rhs(u, p):
    E, m, h, n = u[0], u[1], u[2], u[3]
    gna, gk, gl = p[0], p[1], p[2]
    dm, dh, dn = gates(E, m, h, n)
    dE = (-(E - 50.0) * gna * AREA * m ** 3 * h - (E + 90.0) * gk * AREA * n ** 4
          - (E + 65.0) * gl * AREA + 1.0 * AREA) / AREA
    return jnp.stack([dE, dm, dh, dn])


def make_net_rhs(N):
    def rhs(u, p):
        x = u.reshape(N, 4)
        E, m, h, n = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        gna, gk, gl = p[:N], p[N:2 * N], p[2 * N:3 * N]
        W = p[3 * N:].reshape(N, N)
        dm, dh, dn = gates(E, m, h, n)
        # sum_{j != i} W_ij (E_j - E_i); diagonal terms cancel exactly
        coup = W @ E - E * jnp.sum(W, axis=1)
        dE = (-(E - 50.0) * gna * m ** 3 * h - (E + 90.0) * gk * n ** 4
              - (E + 65.0) * gl + common.NET_I_EXT + coup)
        return jnp.stack([dE, dm, dh, dn], axis=1).reshape(-1)
    return rhs


def euler_loss(rhs, u0, n, dt, all_steps, checkpoint_body, e_only=False):
    """Return loss(p): final-sum or sum over all n+1 stored states of explicit Euler.

    checkpoint_body: wrap the scan body (one Euler step) in `jax.checkpoint`.
    e_only: the final loss sums only the membrane potentials E_i (every 4th
    component, the networks' loss Σ_i E_i(t1)) instead of every component."""
    def step(carry, _):
        u, acc, p = carry
        u = u + dt * rhs(u, p)
        if all_steps:
            acc = acc + jnp.sum(u)
        return (u, acc, p), None

    body = jax.checkpoint(step) if checkpoint_body else step

    def loss(p):
        acc0 = jnp.sum(u0) if all_steps else jnp.zeros((), u0.dtype)
        carry, _ = lax.scan(body, (u0, acc0, p), None, length=n)
        u, acc, _ = carry
        if all_steps:
            return acc
        return jnp.sum(u[0::4]) if e_only else jnp.sum(u)
    return loss


def mem_analysis(jitted, *args):
    try:
        ma = jitted.lower(*args).compile().memory_analysis()
        return {"xla_temp_mib": ma.temp_size_in_bytes / 2 ** 20,
                "xla_output_mib": ma.output_size_in_bytes / 2 ** 20}
    except Exception as e:  # noqa: BLE001
        return {"xla_memory_analysis_error": repr(e)[:200]}


def blocked(x):
    return jax.block_until_ready(x)


def bench_euler(b, problem, rhs, u0, p0, n, all_steps, nets=False):
    u0 = jnp.asarray(u0, dtype=jnp.float64)
    p0 = jnp.asarray(p0, dtype=jnp.float64)
    P = p0.shape[0]
    for checkpoint_body in (True, False):
        loss = euler_loss(rhs, u0, n, common.HH_DT, all_steps, checkpoint_body, e_only=nets)
        fwd = jax.jit(loss)
        vg = jax.jit(jax.value_and_grad(loss))
        if checkpoint_body:
            method = "euler_scan_checkpoint_body"
            config = ("jax.jit(jax.value_and_grad) through lax.scan with jax.checkpoint on the "
                      "scan body (one Euler step)")
        else:
            method = "euler_scan_reverse"
            config = "jax.jit(jax.value_and_grad) through lax.scan, plain (no checkpoint)"
        b.run(problem, method,
              lambda: float(blocked(fwd(p0))),
              lambda: tuple(map(jax.device_get, blocked(vg(p0)))),
              extra={"n_steps": n, "dt": common.HH_DT, "config": config},
              post=lambda: mem_analysis(vg, p0))

    # forward mode
    loss = euler_loss(rhs, u0, n, common.HH_DT, all_steps, False, e_only=nets)
    fwd = jax.jit(loss)
    fwd_config = "jax.jit(jax.jacfwd) through lax.scan (forward mode, P tangents)"
    if P <= 200:
        jf = jax.jit(lambda p: (loss(p), jax.jacfwd(loss)(p)))
        b.run(problem, "euler_scan_forward_jacfwd",
              lambda: float(blocked(fwd(p0))),
              lambda: tuple(map(jax.device_get, blocked(jf(p0)))),
              extra={"n_steps": n, "dt": common.HH_DT, "estimated": False,
                     "config": fwd_config})
    else:
        chunk = 32
        if not b.wanted(problem):
            return
        rec = b.base(problem, "euler_scan_forward_jacfwd")
        rec.update({"n_steps": n, "dt": common.HH_DT, "estimated": True, "config": fwd_config,
                    "estimate_note": "full jacfwd (%d tangents) too slow here: timed a vmapped "
                                     "JVP of %d basis tangents, gradient_ms and first_call_ms "
                                     "(compile + one chunk + (P/%d - 1) chunks) scaled by P/%d"
                                     % (P, chunk, chunk, chunk)})
        try:
            basis = jnp.eye(P, chunk, dtype=jnp.float64).T  # first `chunk` unit vectors

            def jvp_chunk(p):
                return jax.vmap(lambda t: jax.jvp(loss, (p,), (t,)))(basis)

            jc = jax.jit(jvp_chunk)
            f_first, f_med, f_n, lossv, _ = common.time_calls(lambda: float(blocked(fwd(p0))),
                                                           b.args.reps, b.args.budget)
            g_first, g_med, g_n, out, peak = common.time_calls(
                lambda: tuple(map(jax.device_get, blocked(jc(p0)))), min(3, b.args.reps),
                b.args.budget)
            scale = P / chunk
            rec.update({"forward_ms": f_med, "forward_first_call_ms": f_first,
                        "gradient_ms": g_med * scale, "chunk_ms": g_med,
                        "first_call_ms": g_first + g_med * (scale - 1), "gradient_n_timed": g_n,
                        "loss": common.jnum(lossv), "n_params": P,
                        "peak_mem_gradient_mib": peak,
                        "memory_method": "peak RSS increase (MiB) during one chunk of %d tangents" % chunk,
                        "grad_first_chunk": [common.jnum(v) for v in out[1]]})
        except Exception as e:  # noqa: BLE001
            rec["error"] = common.error_text(e)
        common.emit(rec)


def bench_odeint(b, t_end):
    problem = "hh_dopri5_final"
    if not b.wanted(problem):
        return
    try:
        from jax.experimental.ode import odeint
    except Exception as e:  # noqa: BLE001
        b.error(problem, "odeint_dopri5_backsolve_adjoint", "import failed: %r" % e)
        return
    u0 = jnp.asarray(common.HH_U0, dtype=jnp.float64)
    p0 = jnp.asarray(common.HH_P, dtype=jnp.float64)
    ts = jnp.array([0.0, t_end])

    def loss(p):
        ys = odeint(lambda y, t, p: hh_rhs(y, p), u0, ts, p, rtol=1e-8, atol=1e-8,
                    mxstep=10 ** 7)
        return jnp.sum(ys[-1])
    fwd = jax.jit(loss)
    vg = jax.jit(jax.value_and_grad(loss))
    b.run(problem, "odeint_dopri5_backsolve_adjoint",
          lambda: float(blocked(fwd(p0))),
          lambda: tuple(map(jax.device_get, blocked(vg(p0)))),
          extra={"rtol": 1e-8, "atol": 1e-8,
                 "config": "jax.experimental.ode.odeint (Dopri5) + its backsolve adjoint",
                 "note": "jax.experimental.ode.odeint: adaptive Dopri5, continuous adjoint "
                         "integrating state+adjoint backwards"})


def main():
    b = common.Bench(ENGINE, lambda: "jax %s / jaxlib %s" % (jax.__version__,
                                                          __import__("jaxlib").__version__))
    n_hh = common.n_steps(b.t_hh)
    bench_euler(b, "hh_seed_final", hh_rhs, common.HH_U0, common.HH_P, n_hh, False)
    bench_euler(b, "hh_seed_all_steps", hh_rhs, common.HH_U0, common.HH_P, n_hh, True)
    bench_odeint(b, b.t_hh)
    n_net = common.n_steps(b.t_net)
    for N in common.NET_NS:
        bench_euler(b, "hh_network_%d" % N, make_net_rhs(N), common.net_u0(N),
                    common.net_params(N), n_net, False, nets=True)


if __name__ == "__main__":
    t0 = time.time()
    main()
