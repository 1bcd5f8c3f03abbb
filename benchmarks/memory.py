"""Peak memory of one training step, strided vs PyTorch, each side in its own fresh process.

    python benchmarks/memory.py                              # resnet50, batch 16, 224x224, float32
    python benchmarks/memory.py --model mobilenet_v2 --batch 8 --steps 2
    python benchmarks/memory.py --markdown benchmarks/RESULTS.md --append

A step is: gradients set to ``None``, forward (training mode: batch norm on batch
statistics), cross-entropy against fixed labels, backward (every weight gradient; no
gradient for the input image).  No optimiser update.  The strided model is
``strided.models.create(model)``; the torch side is the twin of ``models.py`` (same
architecture, NCHW), with its own random weights (memory does not depend on the values).

**What is measured.**  Each side runs in a child process of its own (``--child strided`` /
``--child torch``), so that one library's allocations, its allocator's cached blocks and its
imports never count for the other.  The child imports its library, builds the model and the
batch, then resets the kernel's peak resident set size (writing ``5`` to
``/proc/self/clear_refs`` sets ``VmHWM`` to the current ``VmRSS``; Linux >= 4.0) and reads
the baseline ``VmRSS``; after each step it reads ``VmHWM``.  The number reported is
``peak growth = VmHWM after the step - baseline``: the memory the step needed on top of the
model, its weights and the input batch (activations saved for backward, temporaries,
gradients).  With ``--steps 2`` the second column is the peak over both steps (it shows
what the allocators keep between steps).  Where ``clear_refs`` cannot be written the peak
since the process started is used (``ru_maxrss``) and the row says so: it can only be larger.

Target (issue 11): strided's growth <= 1.3 x PyTorch's.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)

TARGET = 1.3
MIB = 1024.0


# --------------------------------------------------------------------------- measuring
def memory_status() -> dict:
    """``{"VmRSS": kB, "VmHWM": kB}`` of this process, from ``/proc/self/status`` (Linux); elsewhere
    VmHWM is ``ru_maxrss`` (kB on Linux, bytes on macOS: normalised to kB) and VmRSS the same."""
    found = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    if "VmHWM" not in found:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak // 1024 if sys.platform == "darwin" else peak
        found.setdefault("VmHWM", peak)
        found.setdefault("VmRSS", peak)
    return found


def reset_peak() -> bool:
    """Set this process's peak RSS (VmHWM) to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_growth(step, steps: int = 1) -> dict:
    """Run ``step()`` ``steps`` times; how far the peak RSS rose above the RSS before the first run.

    Returns ``{"baseline_mib", "growth_mib": [after step 1, after steps 1-2, ...], "peak_reset"}``:
    ``growth_mib[k]`` = (peak RSS over the first k+1 steps - baseline RSS) in MiB.  ``peak_reset`` is
    False when the peak could not be reset first; then the peak since process start is used and
    the growth is an upper bound.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, received steps={steps}")
    gc.collect()
    reset = reset_peak()
    baseline = memory_status()["VmRSS"]
    growth = []
    for _ in range(steps):
        step()
        growth.append(max(0, memory_status()["VmHWM"] - baseline) / MIB)
    return {"baseline_mib": baseline / MIB, "growth_mib": growth, "peak_reset": reset}


# --------------------------------------------------------------------------- the two sides (child processes)
def strided_step(model: str, batch: int, size: int, num_classes: int, threads: int, seed: int = 0):
    """(step function, parameter count) of a strided training step; imports strided first."""
    sd = common.import_strided()
    import numpy as np
    import strided.functional as F
    from strided import models as sd_models

    sd.functional.set_num_threads(threads)
    common.set_openblas_threads(threads)
    net = sd_models.create(model, num_classes=num_classes)
    net.train()
    rng = np.random.default_rng(seed)
    x = sd.tensor(rng.standard_normal((batch, size, size, 3)).astype(np.float32))
    labels = rng.integers(0, num_classes, batch)
    params = net.parameters()

    def step():
        for p in params:
            p.grad = None
        loss = F.cross_entropy(net(x), labels)
        loss.backward()

    return step, net.num_parameters(trainable_only=True)


def torch_step(model: str, batch: int, size: int, num_classes: int, threads: int, seed: int = 0):
    """(step function, parameter count) of the PyTorch twin's training step (``models.py``'s twins)."""
    import numpy as np
    import torch
    import models as twins_module

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = twins_module.torch_twins(torch)[model](num_classes)
    net.train()
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, num_classes, batch))

    def step():
        net.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        loss.backward()

    return step, sum(p.numel() for p in net.parameters() if p.requires_grad)


def run_child(side: str, args) -> dict:
    """Build ``side``'s model and batch, then :func:`peak_growth` of ``args.steps`` steps."""
    build = strided_step if side == "strided" else torch_step
    t0 = time.perf_counter()
    step, n_params = build(args.model, args.batch, args.size, args.num_classes, args.threads, args.seed)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = peak_growth(step, args.steps)
    result.update(side=side, parameters=n_params, build_s=built, steps_s=time.perf_counter() - t0)
    return result


def measure_side(side: str, args) -> dict:
    """Run ``side`` in a fresh Python process (this script with ``--child side``); its JSON result."""
    command = [sys.executable, os.path.abspath(__file__), "--child", side, "--model", args.model,
               "--batch", str(args.batch), "--size", str(args.size), "--num-classes", str(args.num_classes),
               "--threads", str(args.threads), "--steps", str(args.steps), "--seed", str(args.seed)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50", help="a model of models.py (default resnet50)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1, help="training steps per child (default 1)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="child processes per side, alternating strided / torch; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="threads for BLAS, strided and torch (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", metavar="PATH", help="write the table to this markdown file")
    parser.add_argument("--append", action="store_true", help="append to --markdown PATH instead of overwriting")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON (read by run_all.py)")
    parser.add_argument("--child", choices=("strided", "torch"), help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args)), flush=True)
        return 0

    sd, np, torch = common.start(args.threads)
    runs = {"strided": [], "torch": []}
    for r in range(args.repeats):
        for side in runs:
            result = measure_side(side, args)
            runs[side].append(result)
            print(f"[{side} run {r + 1}] baseline {result['baseline_mib']:.0f} MiB, peak growth per step "
                  f"{', '.join(f'{g:.0f}' for g in result['growth_mib'])} MiB ({result['parameters']:,} "
                  f"parameters; build {result['build_s']:.1f} s, steps {result['steps_s']:.1f} s"
                  f"{'' if result['peak_reset'] else '; peak NOT reset: upper bound'})", flush=True)

    def median(side, k):
        values = sorted(r["growth_mib"][k] for r in runs[side])
        return values[len(values) // 2]

    name = f"{args.model} training step, batch {args.batch}, {args.size}x{args.size}, float32"
    header = ["case", "strided MiB", "torch MiB", "ratio", "target", "strided baseline MiB", "torch baseline MiB"]
    rows = []
    for k in ([0] if args.steps == 1 else [0, args.steps - 1]):
        label = name + ("" if k == 0 else f" (peak over {k + 1} steps)")
        s, t = median("strided", k), median("torch", k)
        ratio = s / t if t > 0 else None
        rows.append([label, f"{s:.1f}", f"{t:.1f}", common.fmt_ratio(ratio),
                     common.verdict(ratio, TARGET if k == 0 else None),
                     f"{runs['strided'][0]['baseline_mib']:.0f}", f"{runs['torch'][0]['baseline_mib']:.0f}"])
    reset = all(r["peak_reset"] for side in runs for r in runs[side])
    notes = [f"MiB = peak resident set growth during the step above the RSS after imports, model build and "
             f"input batch (VmHWM after - VmRSS before, the peak reset through /proc/self/clear_refs"
             f"{'' if reset else ' — NOT available here: upper bounds'}); each side in its own fresh process, "
             f"{args.threads} thread(s), median of {args.repeats} process(es) per side. ratio = strided / torch "
             f"(target <= {TARGET}). A step: grads None, forward (train mode), cross-entropy, backward; no update.",
             common.missed_targets(rows)]
    common.finish(args, "Peak memory of a training step, strided vs PyTorch", header, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
