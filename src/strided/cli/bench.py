"""``strided bench``: a quick side-by-side timing of strided and PyTorch on this machine.

Prints the machine (CPU model, logical cores), the BLAS NumPy uses (from threadpoolctl) and a
table of median times for a few typical layers, forward + backward as in training, plus one
LeNet-5 training step and a fused MobileNetV2 forward pass.  When PyTorch is installed each row
is also run with torch (same thread count, NCHW, interleaved with strided run by run) and the
ratio ``strided / torch`` is shown (below 1: strided is faster), with the largest relative
difference of the outputs as a check that both computed the same thing.  Without PyTorch the
table has strided's times alone.

The full benchmarks (quiet-machine gate, more cases, results files) are in ``benchmarks/`` of
the source tree; this command is the two-minute-or-less version a user can run anywhere
(about 15 s on two cores).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time

from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_bench", "machine_info", "CASES"]

# name -> (kind, shapes); "tiny" shapes are for tests and smoke runs
CASES = {
    "conv3x3 56x56x64->64 N8": ("conv", dict(N=8, H=56, C=64, O=64, K=3, pad=1)),
    "conv5x5 32x32x1->6 N128": ("conv", dict(N=128, H=32, C=1, O=6, K=5, pad=0)),
    "depthwise3x3 56x56x32 N32": ("depthwise", dict(N=32, H=56, C=32, K=3, pad=1)),
    "batchnorm train 32x32x16 N128": ("batchnorm", dict(N=128, H=32, C=16)),
    "maxpool2x2 28x28x6 N128": ("maxpool", dict(N=128, H=28, C=6)),
    "LeNet-5 train step N256": ("lenet", dict(N=256)),
    "mobilenet_v2 fused forward 224 N1": ("mobilenet", dict(N=1, H=224)),
}
TINY = {"conv": dict(N=2, H=8, C=3, O=4, K=3, pad=1), "depthwise": dict(N=2, H=8, C=4, K=3, pad=1),
        "batchnorm": dict(N=2, H=4, C=3), "maxpool": dict(N=2, H=4, C=3), "lenet": dict(N=4),
        "mobilenet": dict(N=1, H=32)}


def register(subparsers):
    """Add ``strided bench`` to the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "bench",
        help="time typical layers with strided (and PyTorch, if installed) on this machine",
        description=__doc__.split("\n\n")[1].replace("\n", " ").strip(),
    )
    p.add_argument("--repeats", type=int, default=5, metavar="R",
                   help="timed runs of each side, interleaved; the median is shown (default: 5)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for strided, its BLAS and torch (default: all logical cores)")
    p.add_argument("--only", default=None, metavar="SUBSTRING",
                   help="run only the rows whose name contains this (case-insensitive)")
    p.add_argument("--no-torch", action="store_true", help="time strided alone even if PyTorch is installed")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (a smoke test of the command; meaningless times)")
    p.add_argument("--json", action="store_true", help="print the machine and the rows as JSON on stdout")
    p.set_defaults(func=cmd_bench)
    return p


# --------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict:
    """CPU, logical cores, Python/NumPy versions and the BLAS libraries NumPy loaded."""
    import numpy as np

    blas = []
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("user_api") == "blas":
                blas.append({k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                      "filepath")})
    except ImportError:
        pass
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        load = None
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "load_average": load, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas}


# --------------------------------------------------------------------------- the cases
def _rng_arrays(seed, *shapes):
    import numpy as np
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def build_case(kind: str, p: dict, torch):
    """``(strided_step, torch_step or None)``: each runs the case once and returns its output array."""
    import numpy as np

    import strided as sd
    import strided.functional as F

    def nchw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    def oihw(w):
        return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))

    def back(a):  # torch NCHW output -> NHWC array
        a = a.detach().numpy()
        return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a

    if kind in ("conv", "depthwise", "batchnorm", "maxpool"):
        N, H, C = p["N"], p["H"], p["C"]
        if kind == "conv":
            x, w = _rng_arrays(0, (N, H, H, C), (p["K"], p["K"], C, p["O"]))
            op = lambda x, w: F.conv2d(x, w, padding=p["pad"])                           # noqa: E731
            top = lambda x, w: torch.nn.functional.conv2d(x, w, padding=p["pad"])        # noqa: E731
        elif kind == "depthwise":
            x, w = _rng_arrays(0, (N, H, H, C), (p["K"], p["K"], 1, C))
            op = lambda x, w: F.conv2d(x, w, padding=p["pad"], groups=C)                 # noqa: E731
            top = lambda x, w: torch.nn.functional.conv2d(x, w, padding=p["pad"], groups=C)  # noqa: E731
        elif kind == "batchnorm":
            x, w = _rng_arrays(0, (N, H, H, C), (C,))
            rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
            trm, trv = torch.zeros(C) if torch else None, torch.ones(C) if torch else None
            op = lambda x, w: F.batch_norm(x, rm, rv, w, None, training=True)           # noqa: E731
            top = lambda x, w: torch.nn.functional.batch_norm(x, trm, trv, w, None, training=True)  # noqa: E731
        else:
            (x,) = _rng_arrays(0, (N, H, H, C))
            w = None
            op = lambda x, w: F.max_pool2d(x, 2)                                         # noqa: E731
            top = lambda x, w: torch.nn.functional.max_pool2d(x, 2)                      # noqa: E731
        (gy,) = _rng_arrays(1, op(x, w).shape)

        def s_step():
            xs = sd.tensor(x, requires_grad=True)
            ws = sd.tensor(w, requires_grad=True) if w is not None else None
            y = op(xs, ws)
            y.backward(gy)
            return y.data

        t_step = None
        if torch is not None:
            xt0 = nchw(x)
            wt0 = None if w is None else (torch.from_numpy(w) if w.ndim == 1 else oihw(w))
            gyt = nchw(gy)

            def t_step():
                xt = xt0.clone().requires_grad_(True)
                wt = None if wt0 is None else wt0.clone().requires_grad_(True)
                y = top(xt, wt)
                y.backward(gyt)
                return back(y)
        return s_step, t_step

    if kind == "lenet":
        return _lenet_case(p["N"], torch)
    if kind == "mobilenet":
        from .. import models
        from ..nn import fuse
        model = fuse(models.create("mobilenet_v2"), input_shape=(1, p["H"], p["H"], 3))
        (x,) = _rng_arrays(0, (p["N"], p["H"], p["H"], 3))

        def s_step():
            with sd.no_grad():
                return model(sd.tensor(x)).data
        return s_step, None
    raise CLIError(f"unknown bench case kind {kind!r}")


def _lenet_case(N: int, torch):
    """One SGD step of LeNet-5 (conv5x5 6, relu, pool, conv5x5 16, relu, pool, 120, 84, 10); the
    same weights on both sides."""
    import numpy as np

    import strided as sd
    import strided.functional as F

    shapes = [(5, 5, 1, 6), (6,), (5, 5, 6, 16), (16,), (400, 120), (120,), (120, 84), (84,), (84, 10), (10,)]
    params = [a * 0.1 for a in _rng_arrays(2, *shapes)]
    (x,) = _rng_arrays(3, (N, 32, 32, 1))
    labels = np.random.default_rng(4).integers(0, 10, N)
    sp = [sd.tensor(a.copy(), requires_grad=True) for a in params]

    def s_step():
        for q in sp:
            q.grad = None
        h = F.max_pool2d(F.relu(F.conv2d(x, sp[0], sp[1])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, sp[2], sp[3])), 2)
        h = h.reshape(N, -1)
        h = F.relu(F.linear(h, sp[4], sp[5]))
        h = F.relu(F.linear(h, sp[6], sp[7]))
        loss = F.cross_entropy(F.linear(h, sp[8], sp[9]), labels)
        loss.backward()
        for q in sp:
            q.data -= 0.01 * q.grad
        return np.asarray(loss.data)

    if torch is None:
        return s_step, None
    TF = torch.nn.functional
    tp = []
    for a in params:
        a = a.transpose(3, 2, 0, 1) if a.ndim == 4 else (a.T if a.ndim == 2 else a)
        tp.append(torch.tensor(np.ascontiguousarray(a), requires_grad=True))
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    lt = torch.from_numpy(labels)

    def t_step():
        for q in tp:
            q.grad = None
        h = TF.max_pool2d(TF.relu(TF.conv2d(xt, tp[0], tp[1])), 2)
        h = TF.max_pool2d(TF.relu(TF.conv2d(h, tp[2], tp[3])), 2)
        h = h.permute(0, 2, 3, 1).reshape(N, -1)        # NHWC flatten, as strided
        h = TF.relu(TF.linear(h, tp[4], tp[5]))
        h = TF.relu(TF.linear(h, tp[6], tp[7]))
        loss = TF.cross_entropy(TF.linear(h, tp[8], tp[9]), lt)
        loss.backward()
        with torch.no_grad():
            for q in tp:
                q -= 0.01 * q.grad
        return loss.detach().numpy()

    return s_step, t_step


# --------------------------------------------------------------------------- timing
def time_interleaved(steps: dict, repeats: int) -> dict:
    """Median seconds of each step: one untimed warm-up each, then ``repeats`` rounds, each
    running every step once untimed (its own caches and thread pool warm, the other library's
    threads asleep) and then once timed."""
    for step in steps.values():
        step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            step()
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def _set_threads(n: int, torch) -> None:
    from .. import functional as F
    F.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except ImportError:
        pass
    if torch is not None:
        torch.set_num_threads(n)


def cmd_bench(args) -> int:
    """``strided bench``: print the machine, the BLAS and the side-by-side table."""
    import numpy as np

    if args.repeats < 1:
        raise CLIError(f"--repeats must be >= 1, received --repeats {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads must be >= 1, received --threads {args.threads}")
    names = [n for n in CASES if not args.only or args.only.lower() in n.lower()]
    if not names:
        raise CLIError(f"no bench row contains {args.only!r}; rows: {', '.join(CASES)}")
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811  (strided is imported first: its BLAS settings are in place)
        except ImportError:
            torch = None
    threads = args.threads or os.cpu_count() or 1
    _set_threads(threads, torch)
    info = machine_info()
    info["threads"] = threads
    info["torch"] = None if torch is None else torch.__version__
    if not args.json:
        print(f"machine: {info['cpu']}, {info['logical_cores']} logical cores; {info['platform']}")
        if info["load_average"] is not None:
            busy = info["load_average"] > 0.5 * (info["logical_cores"] or 1)
            print(f"load average (1 min): {info['load_average']:.1f}"
                  + (" -- a busy machine: times are noisy, and multi-threaded torch suffers most" if busy else ""))
        for b in info["blas"] or [{"internal_api": "unknown (threadpoolctl not installed)"}]:
            print(f"BLAS: {b.get('internal_api')} {b.get('version') or ''} {b.get('architecture') or ''}".rstrip()
                  + (f", {b['num_threads']} threads" if b.get("num_threads") else ""))
        print(f"python {info['python']}, numpy {info['numpy']}, torch {info['torch'] or 'not installed'}; "
              f"{threads} threads; median of {args.repeats}{' (tiny shapes)' if args.tiny else ''}\n", flush=True)
    rows = []
    for name in names:
        kind, params = CASES[name]
        s_step, t_step = build_case(kind, TINY[kind] if args.tiny else params, torch)
        steps = {"strided": s_step} if t_step is None else {"strided": s_step, "torch": t_step}
        err = None
        if t_step is not None:
            a, b = np.asarray(s_step()), np.asarray(t_step())
            err = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
        med = time_interleaved(steps, args.repeats)
        row = {"case": name, "strided_ms": med["strided"] * 1e3,
               "torch_ms": med["torch"] * 1e3 if "torch" in med else None, "max_rel_err": err}
        row["ratio"] = row["strided_ms"] / row["torch_ms"] if row["torch_ms"] else None
        rows.append(row)
        if not args.json:
            torch_part = (f"{row['torch_ms']:10.2f} {row['ratio']:7.2f}  {err:9.1e}" if row["torch_ms"] is not None
                          else f"{'-':>10} {'-':>7}  {'-':>9}")
            if len(rows) == 1:
                print(f"{'case':36} {'strided ms':>10} {'torch ms':>10} {'ratio':>7}  {'max rel err':>9}")
            print(f"{name:36} {row['strided_ms']:10.2f} {torch_part}", flush=True)
    if args.json:
        print(json.dumps({"machine": info, "rows": rows}, indent=2))
    else:
        print("\nratio = strided / torch (median times, same threads); below 1 strided is faster. "
              "LeNet's rows compare one SGD step; the error column compares the outputs (the LeNet loss).")
    return EXIT_OK
