"""torchdiffeq peer: `odeint_adjoint` (continuous adjoint: integrates state, adjoint and
parameter-adjoint backwards with the same solver) with method = "euler" (fixed step 0.01)
and "dopri5" (rtol = atol = 1e-8); for reference also plain `odeint` with reverse-mode
autograd through the solver steps (discretise-then-optimise).  float64 on CPU, one thread.
"""
import time

import common

common.limit_threads()
ENGINE = "torchdiffeq"

try:
    import torch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    import torchdiffeq
    from torchdiffeq import odeint, odeint_adjoint
except Exception as e:  # noqa: BLE001
    common.fatal(ENGINE, "import failed: %s" % (repr(e)[:1500],))

V_T = common.V_T
AREA = common.AREA


class HH(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(p, dtype=torch.float64))

    def forward(self, t, u):
        E, m, h, n = u[0], u[1], u[2], u[3]
        gna, gk, gl = self.p[0], self.p[1], self.p[2]
        am = -0.32 * (E - V_T - 13.0) / (torch.exp(-(E - V_T - 13.0) / 4.0) - 1.0)
        bm = 0.28 * (E - V_T - 40.0) / (torch.exp((E - V_T - 40.0) / 5.0) - 1.0)
        ah = 0.128 * torch.exp(-(E - V_T - 17.0) / 18.0)
        bh = 4.0 / (1.0 + torch.exp(-(E - V_T - 40.0) / 5.0))
        an = -0.032 * (E - V_T - 15.0) / (torch.exp(-(E - V_T - 15.0) / 5.0) - 1.0)
        bn = 0.5 * torch.exp(-(E - V_T - 10.0) / 40.0)
        dE = (-(E - 50.0) * gna * AREA * m ** 3 * h - (E + 90.0) * gk * AREA * n ** 4
              - (E + 65.0) * gl * AREA + 1.0 * AREA) / AREA
        return torch.stack([dE, am * (1 - m) - bm * m, ah * (1 - h) - bh * h,
                            an * (1 - n) - bn * n])


def make(method_name, adjoint, t_end, n_steps, all_steps):
    f = HH(common.HH_P)
    u0 = torch.tensor(common.HH_U0, dtype=torch.float64)
    if all_steps:
        ts = torch.linspace(0.0, t_end, n_steps + 1, dtype=torch.float64)
    else:
        ts = torch.tensor([0.0, t_end], dtype=torch.float64)
    kw = {}
    if method_name == "euler":
        kw["options"] = {"step_size": common.HH_DT}
    else:
        kw["rtol"] = 1e-8
        kw["atol"] = 1e-8
    solver = odeint_adjoint if adjoint else odeint
    if adjoint:
        kw["adjoint_params"] = (f.p,)

    def loss():
        ys = solver(f, u0, ts, method=method_name, **kw)
        return ys.sum() if all_steps else ys[-1].sum()

    def forward():
        with torch.no_grad():
            return float(loss())

    def gradient():
        f.p.grad = None
        val = loss()
        val.backward()
        return float(val.detach()), f.p.grad.detach().clone().tolist()
    return forward, gradient


def main():
    b = common.Bench(ENGINE, lambda: "torchdiffeq %s / torch %s" % (
        getattr(torchdiffeq, "__version__", "?"), torch.__version__))
    n = common.n_steps(b.t_hh)
    # Python-level stepping is slow (no JIT, so the first call is already representative):
    # full problems are timed by a single call (n_timed = 0), quick mode by up to 3.
    reps = min(3, b.args.reps) if b.quick else 0
    cases = [
        ("hh_seed_final", "euler", True, False),
        ("hh_seed_final", "euler", False, False),
        ("hh_seed_all_steps", "euler", True, True),
        ("hh_dopri5_final", "dopri5", True, False),
        ("hh_dopri5_final", "dopri5", False, False),
    ]
    for problem, meth, adj, all_steps in cases:
        name = meth + ("_odeint_adjoint" if adj else "_odeint_autograd")
        extra = {"dt": common.HH_DT} if meth == "euler" else {"rtol": 1e-8, "atol": 1e-8}
        if not b.wanted(problem):
            continue
        try:
            fwd, grad = make(meth, adj, b.t_hh, n, all_steps)
        except Exception as e:  # noqa: BLE001
            b.error(problem, name, repr(e)[:1500])
            continue
        b.run(problem, name, fwd, grad, extra=extra, reps=reps)


if __name__ == "__main__":
    t0 = time.time()
    main()
