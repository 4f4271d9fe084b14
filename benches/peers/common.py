"""Shared problem definitions, timing and JSON reporting for the peer benchmarks.

Every peer script imports this module so that all peers implement exactly the same
problems (see README.md).  Nothing here depends on a particular AD engine: the model
equations themselves are written once per engine (they must be traced by that engine),
but constants, initial states, step counts and the reporting format live here.
"""

import argparse
import json
import math
import re
import os
import statistics
import sys
import time
import traceback

# ---------------------------------------------------------------------------
# Problem constants (must match revode's fixtures)
# ---------------------------------------------------------------------------
V_T = -63.0
AREA = 20000.0
HH_U0 = [-59.0, 0.2, 0.9, 0.1]
HH_P = [70.0, 10.0, 0.05]
HH_DT = 0.01
NET_I_EXT = 1.0
NET_NS = [10, 50, 100]


def net_params(n):
    """Parameter vector of hh_network_N: g_Na (N), g_Kd (N), g_leak (N), W row-major (N^2)."""
    w = [0.0 if i == j else 0.001 * ((i + 2 * j) % 7) for i in range(n) for j in range(n)]
    return [70.0] * n + [10.0] * n + [0.05] * n + w


def net_u0(n):
    u = []
    for i in range(n):
        u += [-59.0 - 0.1 * i, 0.2, 0.9, 0.1]
    return u


# Robertson's chemical kinetics (stiff; issue #15): y1' = -k1 y1 + k3 y2 y3,
# y2' = k1 y1 - k2 y2^2 - k3 y2 y3, y3' = k2 y2^2; loss y3(T); gradient w.r.t. k and y0,
# in the order [k1, k2, k3, y0_1, y0_2, y0_3].
ROBERTSON_K = [0.04, 3e7, 1e4]
ROBERTSON_Y0 = [1.0, 0.0, 0.0]
ROBERTSON_T = 4e5
ROBERTSON_T_QUICK = 40.0
# problem name -> (rtol, atol)
ROBERTSON_TOLS = {"robertson_1e-6": (1e-6, 1e-8), "robertson_1e-8": (1e-8, 1e-12)}
ROBERTSON_GRAD_ORDER = ["k1", "k2", "k3", "y0_1", "y0_2", "y0_3"]


def robertson_t_end(quick):
    return ROBERTSON_T_QUICK if quick else ROBERTSON_T


def robertson_rhs(y, k):
    """The vector field written once for every engine that overloads * and - (JAX, CasADi)."""
    y1, y2, y3 = y[0], y[1], y[2]
    k1, k2, k3 = k[0], k[1], k[2]
    return (-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2 * y2 - k3 * y2 * y3, k2 * y2 * y2)


# HH cable (issue #15): n compartments of a sealed unbranched cable, Hodgkin-Huxley 1952
# channels in the modern convention (rest near -65 mV).  Units: mV, ms, um, uF/cm^2,
# mS/cm^2, uA/cm^2, nA.
CABLE_NS = [100, 1000]
CABLE_RADIUS_UM = 1.0
CABLE_LENGTH_UM = 10.0          # per compartment
CABLE_RA_OHM_CM = 100.0
CABLE_CM_UF_CM2 = 1.0
CABLE_G_MS_CM2 = {"gNa": 120.0, "gK": 36.0, "gLeak": 0.3}
CABLE_E_MV = {"eNa": 50.0, "eK": -77.0, "eLeak": -54.3}
CABLE_V0 = -65.0                 # gates start at their steady state at V0
CABLE_DT = 0.025
CABLE_T = 100.0                  # 4 000 steps
CABLE_T_QUICK = 10.0             # 400 steps
CABLE_STIM_NA = 0.05             # into compartment 0 ...
CABLE_STIM_ON, CABLE_STIM_OFF = 5.0, 95.0   # ... on for t in [5, 95) ms
CABLE_TRACE_EVERY = 40           # far-end V saved every 40th step (1 ms)


def cable_t_end(quick):
    return CABLE_T_QUICK if quick else CABLE_T


def cable_area_um2():
    return 2.0 * math.pi * CABLE_RADIUS_UM * CABLE_LENGTH_UM


def cable_axial_per_ms():
    """g_ax / (area C_m) in 1/ms with g_ax = pi r^2 / (Ra L): pi r^2 / (Ra L area) comes out in
    1/(Ohm cm um) = 1e7 mS/cm^2, and (mS/cm^2) / (uF/cm^2) = 1/ms.  500 /ms here."""
    r, L = CABLE_RADIUS_UM, CABLE_LENGTH_UM
    return math.pi * r * r / (CABLE_RA_OHM_CM * L * cable_area_um2()) * 1e7 / CABLE_CM_UF_CM2


def cable_stim_uA_cm2():
    """0.05 nA into one compartment as a density: nA/um^2 * 1e5 = uA/cm^2."""
    return CABLE_STIM_NA / cable_area_um2() * 1e5


def hh1952_rates(V, exp):
    """(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) in 1/ms; `exp` of the engine."""
    am = 0.1 * (V + 40.0) / (1.0 - exp(-(V + 40.0) / 10.0))
    bm = 4.0 * exp(-(V + 65.0) / 18.0)
    ah = 0.07 * exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + exp(-(V + 35.0) / 10.0))
    an = 0.01 * (V + 55.0) / (1.0 - exp(-(V + 55.0) / 10.0))
    bn = 0.125 * exp(-(V + 65.0) / 80.0)
    return am, bm, ah, bh, an, bn


def hh1952_steady_gates(V):
    am, bm, ah, bh, an, bn = hh1952_rates(V, math.exp)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


def horizons(quick):
    """(t_end for the hh_seed problems, t_end for hh_network); quick mode shortens both."""
    return (6.0, 1.0) if quick else (600.0, 100.0)


def n_steps(t_end, dt=HH_DT):
    return int(round(t_end / dt))


# ---------------------------------------------------------------------------
# Thread limits: every peer runs single-threaded (fair to the other engineers on this
# 2-core machine, and comparable to revode's single-threaded numbers).  Must be set
# before the engine is imported.
# ---------------------------------------------------------------------------
def limit_threads():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )


# ---------------------------------------------------------------------------
# Peak memory: Linux VmHWM of this process, reset before each measured call by
# writing "5" to /proc/self/clear_refs.  Reported as the peak RSS increase over the RSS
# just before the call ("rss_hwm_delta"), which sees XLA / libtorch / CasADi buffers
# that tracemalloc cannot.
# ---------------------------------------------------------------------------
def _status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_peak(fn):
    """Run fn() once; return (result, peak RSS increase in MiB or None)."""
    ok = _reset_hwm()
    before = _status_kb("VmRSS")
    out = fn()
    hwm = _status_kb("VmHWM")
    if not ok or before is None or hwm is None:
        return out, None
    return out, max(0, hwm - before) / 1024.0


def _ms(t):
    return 1000.0 * t


def time_calls(fn, reps, budget_s):
    """First call (includes tracing/JIT compile) then up to `reps` timed calls (at least
    one) within `budget_s` seconds; reps = 0: only one call, reported as both.  Returns (first_ms, median_ms, n_timed, last_result,
    peak MiB of the last timed call or None)."""
    if reps <= 0:  # engines without JIT, slow calls: the single first call is the measurement
        ok = _reset_hwm()
        before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        out = fn()
        first = _ms(time.perf_counter() - t0)
        hwm = _status_kb("VmHWM")
        peak = max(0, hwm - before) / 1024.0 if ok and before and hwm else None
        return first, first, 0, out, peak
    t0 = time.perf_counter()
    out = fn()
    first = _ms(time.perf_counter() - t0)
    times = []
    peak = None
    start = time.perf_counter()
    while len(times) < reps:
        ok = _reset_hwm()
        before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        out = fn()
        times.append(_ms(time.perf_counter() - t0))
        hwm = _status_kb("VmHWM")
        if ok and before is not None and hwm is not None:
            peak = max(0, hwm - before) / 1024.0
        if time.perf_counter() - start > budget_s:
            break
    return first, statistics.median(times), len(times), out, peak


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------
def jnum(x):
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def grad_fields(grad, full_limit=300):
    g = [float(v) for v in grad]
    fin = [v for v in g if math.isfinite(v)]
    out = {"n_params": len(g), "grad_all_finite": len(fin) == len(g)}
    if len(g) <= full_limit:
        out["grad"] = [jnum(v) for v in g]
    else:
        out["grad_summary"] = {
            "sum": jnum(sum(g)),
            "l2": jnum(math.sqrt(sum(v * v for v in g))),
            "max_abs": jnum(max(abs(v) for v in g)),
            "first10": [jnum(v) for v in g[:10]],
            "last10": [jnum(v) for v in g[-10:]],
        }
    return out


def error_text(e):
    """Exception -> short message.  JAX runtime errors from inside a jitted solver wrap the
    real cause (e.g. equinox's "maximum number of solver steps was reached") deep in a
    traceback; put the last line that names an error first."""
    full = "%s: %s" % (type(e).__name__, str(e))
    lines = [l.strip() for l in full.splitlines()
             if re.search(r"(Error|Exception): ", l) and not l.strip().startswith("File")]
    head = lines[-1] if lines else full.splitlines()[0]
    if head == full:
        return full[:2000]
    return (head[:500] + " || " + full[:1500])


def emit(rec):
    print(json.dumps(rec), flush=True)


class Bench:
    """Collects the common CLI (--quick, --reps, --budget, --only) for a peer script."""

    def __init__(self, engine, version_fn=None):
        ap = argparse.ArgumentParser()
        ap.add_argument("--quick", action="store_true", help="short horizons (smoke test)")
        ap.add_argument("--reps", type=int, default=5, help="timed calls after warm-up")
        ap.add_argument("--budget", type=float, default=20.0,
                        help="stop repeating once this many seconds were spent")
        ap.add_argument("--only", default="", help="comma list of problem names to run (default all)")
        self.args = ap.parse_args()
        self.engine = engine
        self.quick = self.args.quick
        self.t_hh, self.t_net = horizons(self.quick)
        self.version = None
        if version_fn is not None:
            try:
                self.version = version_fn()
            except Exception as e:  # noqa: BLE001
                self.version = "unknown (%s)" % e

    def wanted(self, problem):
        if not self.args.only:
            return True
        return problem in [s.strip() for s in self.args.only.split(",")]

    def base(self, problem, method):
        return {"engine": self.engine, "version": self.version, "method": method,
                "problem": problem, "quick": self.quick}

    def run(self, problem, method, forward, gradient, extra=None, reps=None, post=None,
            grad_limit=300,
            memory_note="peak RSS increase (MiB) during the last timed call: VmHWM after "
                        "minus VmRSS before, VmHWM reset via /proc/self/clear_refs"):
        """forward() -> loss (float); gradient() -> (loss, grad sequence).
        post() -> dict of extra fields, run after timing.  grad_limit: the whole gradient is
        kept up to this many entries, a summary beyond.
        Any exception becomes an error record; nothing is dropped."""
        if not self.wanted(problem):
            return None
        rec = self.base(problem, method)
        if extra:
            rec.update(extra)
        try:
            reps = self.args.reps if reps is None else reps
            f_first, f_med, f_n, loss, fpeak = time_calls(forward, reps, self.args.budget)
            g_first, g_med, g_n, (gloss, grad), peak = time_calls(gradient, reps,
                                                                  self.args.budget)
            rec.update({
                "forward_ms": f_med, "forward_first_call_ms": f_first, "forward_n_timed": f_n,
                "gradient_ms": g_med, "first_call_ms": g_first, "gradient_n_timed": g_n,
                "loss": jnum(loss), "loss_from_gradient_call": jnum(gloss),
                "peak_mem_gradient_mib": peak, "peak_mem_forward_mib": fpeak,
                "memory_method": memory_note,
            })
            rec.update(grad_fields(grad, grad_limit))
            if post is not None:  # e.g. compiler memory analysis, after first_call timing
                rec.update(post())
        except Exception as e:  # noqa: BLE001
            rec["error"] = error_text(e)
            rec["traceback_tail"] = traceback.format_exc()[-1500:]
        emit(rec)
        return rec

    def error(self, problem, method, msg):
        if not self.wanted(problem):
            return
        rec = self.base(problem, method)
        rec["error"] = msg
        emit(rec)


def fatal(engine, msg):
    """Whole peer unusable (e.g. import failed): one error record, exit 0."""
    emit({"engine": engine, "problem": "*", "method": "*", "error": msg})
    sys.exit(0)
