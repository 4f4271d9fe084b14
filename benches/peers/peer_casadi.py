"""CasADi peer:
  * Euler: one SX step Function, rolled out with `mapaccum` (n steps), gradient by CasADi's
    reverse-mode AD of the rolled-out MX graph (`casadi.gradient`), either compiled to C by
    CasADi's just-in-time compilation (`jit=True, compiler="shell"`, `-O3`: CasADi's
    recommended way to make a Function fast; codegen + compile counted in the first call)
    -- CasADi's best configuration here -- or evaluated by the CasADi virtual machine;
  * CVODES (SUNDIALS BDF, rtol = atol = 1e-8) through `casadi.integrator`, gradient by
    reverse mode, which CasADi implements with CVODES' adjoint sensitivities (checkpointed
    forward solution + backward adjoint solve); hh_dopri5_final's closest CasADi analogue,
    not Dopri5 itself.
"""
import time

import common

common.limit_threads()
ENGINE = "casadi"

try:
    import casadi as ca
except Exception as e:  # noqa: BLE001
    common.fatal(ENGINE, "import failed: %r" % e)

V_T = common.V_T
AREA = common.AREA


def hh_rhs(u, p):
    E, m, h, n = u[0], u[1], u[2], u[3]
    gna, gk, gl = p[0], p[1], p[2]
    am = -0.32 * (E - V_T - 13.0) / (ca.exp(-(E - V_T - 13.0) / 4.0) - 1.0)
    bm = 0.28 * (E - V_T - 40.0) / (ca.exp((E - V_T - 40.0) / 5.0) - 1.0)
    ah = 0.128 * ca.exp(-(E - V_T - 17.0) / 18.0)
    bh = 4.0 / (1.0 + ca.exp(-(E - V_T - 40.0) / 5.0))
    an = -0.032 * (E - V_T - 15.0) / (ca.exp(-(E - V_T - 15.0) / 5.0) - 1.0)
    bn = 0.5 * ca.exp(-(E - V_T - 10.0) / 40.0)
    dE = (-(E - 50.0) * gna * AREA * m ** 3 * h - (E + 90.0) * gk * AREA * n ** 4
          - (E + 65.0) * gl * AREA + 1.0 * AREA) / AREA
    return ca.vertcat(dE, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n)


def euler_functions(n, all_steps):
    u = ca.SX.sym("u", 4)
    p = ca.SX.sym("p", 3)
    step = ca.Function("step", [u, p], [u + common.HH_DT * hh_rhs(u, p)])
    roll = step.mapaccum("roll", n)  # (u0, repmat(p)) -> [u_1 .. u_n]
    P = ca.MX.sym("P", 3)
    u0 = ca.DM(common.HH_U0)
    X = roll(u0, ca.repmat(P, 1, n))
    if all_steps:
        L = ca.sum1(ca.sum2(X)) + ca.sum1(u0)
    else:
        L = ca.sum1(X[:, n - 1])
    fwd = ca.Function("fwd", [P], [L])
    grad = ca.Function("grad", [P], [L, ca.gradient(L, P)])
    return fwd, grad


def cvodes_functions(t_end):
    x = ca.MX.sym("x", 4)
    p = ca.MX.sym("p", 3)
    opts = {"abstol": 1e-8, "reltol": 1e-8, "max_num_steps": 10 ** 6}
    F = ca.integrator("F", "cvodes", {"x": x, "p": p, "ode": hh_rhs(x, p)}, 0.0, t_end, opts)
    P = ca.MX.sym("P", 3)
    xf = F(x0=ca.DM(common.HH_U0), p=P)["xf"]
    L = ca.sum1(xf)
    fwd = ca.Function("fwd", [P], [L])
    grad = ca.Function("grad", [P], [L, ca.gradient(L, P)])
    return fwd, grad


JIT_FLAGS = ["-O3"]
JIT_OPTS = {"jit": True, "compiler": "shell", "jit_cleanup": True,
            "jit_options": {"flags": JIT_FLAGS, "verbose": False}}


def jitted(fn):
    """Compile a CasADi Function to C with the system compiler (cc -O3) on its first call,
    so that the first call's time includes code generation and compilation."""
    box = []

    def call(p):
        if not box:
            X = ca.MX.sym("X", fn.size1_in(0))
            box.append(ca.Function(fn.name() + "_jit", [X], fn.call([X]), JIT_OPTS))
        return box[0](p)
    return call


def wrap(fwd, grad):
    p0 = ca.DM(common.HH_P)

    def f():
        return float(fwd(p0))

    def g():
        val, gr = grad(p0)
        return float(val), [float(v) for v in ca.vertsplit(gr)]
    return f, g


def main():
    b = common.Bench(ENGINE, lambda: "casadi %s" % ca.__version__)
    n = common.n_steps(b.t_hh)
    for problem, all_steps in (("hh_seed_final", False), ("hh_seed_all_steps", True)):
        if not b.wanted(problem):
            continue
        t0 = time.perf_counter()
        try:
            fwd, grad = euler_functions(n, all_steps)
        except Exception as e:  # noqa: BLE001
            b.error(problem, "euler_mapaccum_reverse", repr(e)[:1500])
            continue
        build_ms = 1000 * (time.perf_counter() - t0)
        f, g = wrap(fwd, grad)
        f, g = wrap(jitted(fwd), jitted(grad))
        b.run(problem, "euler_mapaccum_reverse_jit_cc", f, g, reps=b.args.reps,
              extra={"n_steps": n, "dt": common.HH_DT, "graph_build_ms": build_ms,
                     "config": "SX step + mapaccum, reverse mode (casadi.gradient), compiled: "
                               "jit=True, compiler='shell', flags %s" % " ".join(JIT_FLAGS),
                     "note": "first_call_ms includes C code generation + compile"})
        f, g = wrap(fwd, grad)
        b.run(problem, "euler_mapaccum_reverse", f, g, reps=min(3, b.args.reps),
              extra={"n_steps": n, "dt": common.HH_DT, "graph_build_ms": build_ms,
                     "config": "SX step + mapaccum, reverse mode (casadi.gradient), "
                               "CasADi virtual machine (not compiled)",
                     "note": "first_call_ms excludes graph_build_ms"})
    problem = "hh_dopri5_final"
    if b.wanted(problem):
        t0 = time.perf_counter()
        try:
            fwd, grad = cvodes_functions(b.t_hh)
            build_ms = 1000 * (time.perf_counter() - t0)
            f, g = wrap(fwd, grad)
            b.run(problem, "cvodes_bdf_adjoint", f, g, reps=b.args.reps,
                  extra={"rtol": 1e-8, "atol": 1e-8, "graph_build_ms": build_ms,
                         "config": "integrator('cvodes'), reverse mode = CVODES adjoint",
                         "note": "CVODES BDF (not Dopri5), reverse mode = CVODES adjoint "
                                 "sensitivities with checkpointing"})
        except Exception as e:  # noqa: BLE001
            b.error(problem, "cvodes_bdf_adjoint", repr(e)[:1500])


if __name__ == "__main__":
    main()
