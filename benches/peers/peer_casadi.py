"""CasADi peer:
  * Euler: one SX step Function, rolled out with `mapaccum` (n steps), gradient by CasADi's
    reverse-mode AD of the rolled-out MX graph (`casadi.gradient`), either compiled to C by
    CasADi's just-in-time compilation (`jit=True, compiler="shell"`, `-O3`: CasADi's
    recommended way to make a Function fast; codegen + compile counted in the first call)
    -- CasADi's best configuration here -- or evaluated by the CasADi virtual machine;
  * CVODES (SUNDIALS BDF, rtol = atol = 1e-8) through `casadi.integrator`, gradient by
    reverse mode, which CasADi implements with CVODES' adjoint sensitivities (checkpointed
    forward solution + backward adjoint solve); hh_dopri5_final's closest CasADi analogue,
    not Dopri5 itself;
  * Robertson (robertson_1e-6, robertson_1e-8): CVODES BDF with its adjoint through
    `casadi.integrator('cvodes')` and `casadi.gradient` (reverse mode), gradient of y3(T)
    w.r.t. k and y0; CVODES' step counts of the forward solve and of the adjoint run;
  * HH cable, 100 compartments (hh_cable_100): the same CVODES BDF + adjoint on the
    method-of-lines ODE (4n states); the loss (the sum of the far-end V over the 0.025 ms
    grid) in its trapezoid form, with the integral of V as a CVODES quadrature; one
    integrator per constant-stimulus piece ([0, 5], [5, 95], [95, T]) so CVODES never steps
    across the step current's discontinuities.
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


# CVODES options, set explicitly so that each record names them all (CasADi's documented
# defaults, except the step limit).  linear_solver: CasADi's sparse QR ("qr", its default) --
# on the 400-state cable "csparse" (sparse LU) made a 32-step forward solve ~150x slower
# (181 ms against 1.2 ms), "lapacklu" (dense) ~30x.  The adjoint (backward) problem
# uses the forward tolerances (abstolB/reltolB default to abstol/reltol).
def cvodes_options(rtol, atol):
    return {"reltol": rtol, "abstol": atol, "max_num_steps": 10 ** 7,
            "linear_multistep_method": "bdf", "nonlinear_solver_iteration": "newton",
            "newton_scheme": "direct", "linear_solver": "qr",
            "interpolation_type": "hermite", "steps_per_checkpoint": 20}


STAT_KEYS = ("nsteps", "netfails", "nfevals", "nniters", "nncfails", "nlinsetups", "qlast",
             "hinused", "nstepsB", "netfailsB", "nfevalsB", "nnitersB", "nncfailsB",
             "nlinsetupsB")


def integrator_calls(fn, seen=None):
    """Every CVODES integrator Function that an MX Function calls, depth first."""
    seen = [] if seen is None else seen
    if fn.is_a("MXFunction"):
        for k in range(fn.n_instructions()):
            if fn.instruction_id(k) == ca.OP_CALL:
                inner = fn.instruction_MX(k).which_function()
                if inner.class_name() == "CvodesInterface":
                    seen.append(inner)
                else:
                    integrator_calls(inner, seen)
    return seen


def stats_of(integ, **inputs):
    """CasADi keeps an integrator's statistics only for a direct numerical call (not for one
    nested in another Function), so each integrator is called once more on its own."""
    integ(**inputs)
    st = integ.stats()
    return {k: (common.jnum(st[k]) if isinstance(st[k], float) else st[k])
            for k in STAT_KEYS if k in st}


def robertson_functions(t_end, rtol, atol):
    x = ca.MX.sym("x", 3)
    k = ca.MX.sym("k", 3)
    opts = cvodes_options(rtol, atol)
    dae = {"x": x, "p": k, "ode": ca.vertcat(*common.robertson_rhs(x, k))}
    F = ca.integrator("F", "cvodes", dae, 0.0, t_end, opts)
    K = ca.MX.sym("K", 3)
    Y0 = ca.MX.sym("Y0", 3)
    L = F(x0=Y0, p=K)["xf"][2]
    fwd = ca.Function("fwd", [K, Y0], [L])
    grad = ca.Function("grad", [K, Y0], [L, ca.gradient(L, ca.vertcat(K, Y0))])
    return F, fwd, grad, opts


def bench_robertson(b, problem):
    rtol, atol = common.ROBERTSON_TOLS[problem]
    t_end = common.robertson_t_end(b.quick)
    method = "cvodes_bdf_adjoint"
    t0 = time.perf_counter()
    try:
        F, fwd, grad, opts = robertson_functions(t_end, rtol, atol)
    except Exception as e:  # noqa: BLE001
        b.error(problem, method, repr(e)[:1500])
        return
    build_ms = 1000 * (time.perf_counter() - t0)
    k0 = ca.DM(common.ROBERTSON_K)
    y0 = ca.DM(common.ROBERTSON_Y0)

    def f():
        return float(fwd(k0, y0))

    def g():
        val, gr = grad(k0, y0)
        return float(val), [float(v) for v in ca.vertsplit(gr)]

    def post():
        calls = integrator_calls(grad)
        adjoint = [c for c in calls if c.name() != F.name()]
        out = {"cvodes_stats_forward": stats_of(F, x0=y0, p=k0)}
        if adjoint:
            out["cvodes_stats_adjoint_run"] = stats_of(adjoint[0], x0=y0, p=k0,
                                                       adj_xf=ca.DM([0.0, 0.0, 1.0]))
            out["adjoint_function"] = adjoint[0].name()
        fw = out["cvodes_stats_forward"]
        out["steps"] = {"accepted": fw.get("nsteps"), "rejected_error_test": fw.get("netfails"),
                        "newton_convergence_failures": fw.get("nncfails")}
        return out
    b.run(problem, method, f, g, post=post,
          extra={"rtol": rtol, "atol": atol, "t_end": t_end, "graph_build_ms": build_ms,
                 "casadi_options": opts, "grad_order": common.ROBERTSON_GRAD_ORDER,
                 "config": "integrator('cvodes') BDF, Newton, sparse QR (linear_solver 'qr'), "
                           "reverse mode (casadi.gradient) = CVODES adjoint sensitivities, "
                           "Hermite checkpoints every 20 steps",
                 "note": "the gradient call runs the forward solve, then CVODES' adjoint run "
                         "(a checkpointed forward solve + the backward solve); step counts in "
                         "cvodes_stats_forward / cvodes_stats_adjoint_run"})


def cable_rhs(n, x, P, i_stim):
    """Method of lines for the sealed HH cable (revode's spec, see README): x = [V, m, h, nK]
    (n each), P = [gNa, gK, gLeak] (n each, mS/cm^2), i_stim (uA/cm^2) into compartment 0."""
    V, m, h, nk = x[0:n], x[n:2 * n], x[2 * n:3 * n], x[3 * n:4 * n]
    gna, gk, gl = P[0:n], P[n:2 * n], P[2 * n:3 * n]
    E = common.CABLE_E_MV
    am, bm, ah, bh, an, bn = common.hh1952_rates(V, ca.exp)
    i_ion = (gna * m ** 3 * h * (V - E["eNa"]) + gk * nk ** 4 * (V - E["eK"])
             + gl * (V - E["eLeak"]))
    a = common.cable_axial_per_ms()
    axial = []
    for i in range(n):  # sealed ends: a missing neighbour contributes nothing
        t = 0
        if i > 0:
            t = t + (V[i - 1] - V[i])
        if i < n - 1:
            t = t + (V[i + 1] - V[i])
        axial.append(a * t)
    stim = ca.vertcat(i_stim, ca.SX.zeros(n - 1, 1))
    dV = (-i_ion + stim) / common.CABLE_CM_UF_CM2 + ca.vertcat(*axial)
    return ca.vertcat(dV, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - nk) - bn * nk)


def cable_pieces(t_end):
    """[(first step index, last step index, stimulus on)] of the constant-stimulus pieces."""
    dt = common.CABLE_DT
    switches = [t for t in (common.CABLE_STIM_ON, common.CABLE_STIM_OFF) if t < t_end]
    edges = [0.0] + switches + [t_end]
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out.append((int(round(a / dt)), int(round(b / dt)),
                    common.CABLE_STIM_ON <= a < common.CABLE_STIM_OFF))
    return out


def cable_x0(n):
    V0 = common.CABLE_V0
    m, h, nk = common.hh1952_steady_gates(V0)
    return ca.DM([V0] * n + [m] * n + [h] * n + [nk] * n)


def cable_functions(n, t_end, rtol, atol):
    """The sum over the grid, sum_k V(t_k), is taken in its trapezoid-rule form
    (1/dt) * integral V dt + (V(0) + V(T)) / 2, with the integral as a CVODES quadrature:
    an output at each of the 4 000 grid times would restart CVODES' backward solve at every
    one of them (tried: about 60 backward steps per 0.025 ms interval)."""
    x = ca.SX.sym("x", 4 * n)
    P = ca.SX.sym("P", 3 * n + 1)  # conductances + the stimulus of the piece
    opts = cvodes_options(rtol, atol)
    dae = {"x": x, "p": P, "ode": cable_rhs(n, x, P[:3 * n], P[3 * n]), "quad": x[n - 1]}
    dt = common.CABLE_DT
    G = ca.MX.sym("G", 3 * n)
    xk = cable_x0(n)
    integral = 0
    integs = []
    for j, (k0, k1, on) in enumerate(cable_pieces(t_end)):
        Fj = ca.integrator("cable%d" % j, "cvodes", dae, k0 * dt, k1 * dt, opts)
        stim = common.cable_stim_uA_cm2() if on else 0.0
        out = Fj(x0=xk, p=ca.vertcat(G, stim))
        integral = integral + out["qf"]
        integs.append((Fj, stim))
        xk = out["xf"]
    L = integral / dt + (common.CABLE_V0 + xk[n - 1]) / 2
    fwd = ca.Function("fwd", [G], [L])
    grad = ca.Function("grad", [G], [L, ca.gradient(L, G)])
    return integs, fwd, grad, opts


def cable_trace(n, t_end, G0, opts):
    """Far-end V every CABLE_TRACE_EVERY steps from one untimed forward solve with outputs."""
    x = ca.SX.sym("x", 4 * n)
    P = ca.SX.sym("P", 3 * n + 1)
    dae = {"x": x, "p": P, "ode": cable_rhs(n, x, P[:3 * n], P[3 * n])}
    dt, every = common.CABLE_DT, common.CABLE_TRACE_EVERY
    xk = cable_x0(n)
    trace = [common.CABLE_V0]
    for j, (k0, k1, on) in enumerate(cable_pieces(t_end)):
        ks = [k for k in range(k0 + 1, k1 + 1) if k % every == 0]
        if not ks or ks[-1] != k1:
            ks.append(k1)  # end the piece exactly at its edge
        Fj = ca.integrator("trace%d" % j, "cvodes", dae, k0 * dt, [k * dt for k in ks], opts)
        stim = common.cable_stim_uA_cm2() if on else 0.0
        X = Fj(x0=xk, p=ca.vertcat(G0, stim))["xf"]
        trace += [float(X[n - 1, i]) for i, k in enumerate(ks) if k % every == 0]
        xk = X[:, -1]
    return trace


def bench_cable(b, n):
    problem = "hh_cable_%d" % n
    method = "cvodes_bdf_adjoint_quadrature"
    rtol, atol = 1e-6, 1e-8
    t_end = common.cable_t_end(b.quick)
    t0 = time.perf_counter()
    try:
        integs, fwd, grad, opts = cable_functions(n, t_end, rtol, atol)
    except Exception as e:  # noqa: BLE001
        b.error(problem, method, repr(e)[:1500])
        return
    build_ms = 1000 * (time.perf_counter() - t0)
    g = common.CABLE_G_MS_CM2
    G0 = ca.DM([g["gNa"]] * n + [g["gK"]] * n + [g["gLeak"]] * n)

    def fw():
        return float(fwd(G0))

    def gr():
        val, d = grad(G0)
        return float(val), [float(v) for v in ca.vertsplit(d)]

    def post():
        """Step counts summed over the pieces: each piece integrator called on its own from
        the state the previous piece ends in (the forward solve), and its adjoint run with
        the loss's seed (1/dt on the quadrature, plus 1/2 on the final V in the last piece)."""
        xk = cable_x0(n)
        fwd_tot, adj_tot = {}, {}
        adjoint = [c for c in integrator_calls(grad) if c.name().startswith("asens")]
        for j, (Fj, stim) in enumerate(integs):
            p = ca.vertcat(G0, stim)
            st = stats_of(Fj, x0=xk, p=p)
            for k in ("nsteps", "netfails", "nncfails", "nfevals", "nniters"):
                fwd_tot[k] = fwd_tot.get(k, 0) + st.get(k, 0)
            if j < len(adjoint):
                seed_x = ca.DM.zeros(4 * n, 1)
                if j == len(integs) - 1:
                    seed_x[n - 1] = 0.5
                sa = stats_of(adjoint[j], x0=xk, p=p, adj_xf=seed_x,
                              adj_qf=ca.DM(1.0 / common.CABLE_DT))
                for k in ("nsteps", "nstepsB", "netfails", "netfailsB"):
                    adj_tot[k] = adj_tot.get(k, 0) + sa.get(k, 0)
            xk = Fj(x0=xk, p=p)["xf"]
        return {"cvodes_stats_forward": fwd_tot, "cvodes_stats_adjoint_run": adj_tot,
                "steps": {"accepted": fwd_tot.get("nsteps"),
                          "rejected_error_test": fwd_tot.get("netfails"),
                          "newton_convergence_failures": fwd_tot.get("nncfails")},
                "trace_far_end_v": cable_trace(n, t_end, G0, opts),
                "trace_every": common.CABLE_TRACE_EVERY, "trace_dt": common.CABLE_DT}
    b.run(problem, method, fw, gr, post=post, grad_limit=3 * n,
          extra={"rtol": rtol, "atol": atol, "t_end": t_end, "n_compartments": n,
                 "graph_build_ms": build_ms, "casadi_options": opts,
                 "pieces": [[k0, k1, on] for k0, k1, on in cable_pieces(t_end)],
                 "grad_order": "gNa[0..n-1], gK[0..n-1], gLeak[0..n-1], per mS/cm^2",
                 "config": "integrator('cvodes') BDF, Newton, sparse QR (linear_solver 'qr'), "
                           "one integrator per constant-stimulus piece, loss as a quadrature, "
                           "reverse mode = CVODES adjoint",
                 "note": "continuous ODE at rtol 1e-6 / atol 1e-8 (not backward Euler), and "
                         "the loss is the trapezoid form (1/dt) int V dt + (V(0) + V(T))/2 of "
                         "the grid sum: loss and gradient differ from the dt = 0.025 schemes "
                         "by O(dt) (compare the trace, not the digits)"})


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
    for problem in common.ROBERTSON_TOLS:
        if b.wanted(problem):
            bench_robertson(b, problem)
    if b.wanted("hh_cable_100"):
        bench_cable(b, 100)


if __name__ == "__main__":
    main()
