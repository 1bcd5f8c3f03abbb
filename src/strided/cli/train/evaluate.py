"""``strided evaluate RUN_DIR``: test accuracy and per-class accuracy of a checkpoint (or of an
ensemble of runs, with test-time augmentation if asked); a detection run's mAP."""
from __future__ import annotations

import time

from ..common import RunDir, is_detection, load_data
from ..errors import EXIT_OK, CLIError
from .detect import evaluate_detection
from .ensemble import load_classifier

__all__ = ["cmd_evaluate"]


def cmd_evaluate(args) -> int:
    """``strided evaluate RUN_DIR [RUN_B ...] [--tta MODE] [--ensemble]``: test accuracy and per-class
    accuracy of a checkpoint (or an ensemble of runs), with test-time augmentation if asked."""
    from ...data import DataLoader
    from ...train import evaluate
    from ...tta import VIEWS, TTAModel

    run_dirs = list(args.run_dir)
    config = RunDir(run_dirs[0]).read_config()
    if is_detection(config):
        return evaluate_detection(args, config)
    for flag, given in (("--sizes", getattr(args, "sizes", None)), ("--merge", getattr(args, "merge", None))):
        if given:
            raise CLIError(f"{flag} goes with a detection run; {run_dirs[0]} is a {config.get('task', 'classify')} run")
    config, model, what = load_classifier(run_dirs, args, "evaluate")
    if args.tta != "none":
        model = TTAModel(model, args.tta)
    _, test = load_data({**config, "limit": 0})
    start = time.perf_counter()
    result = evaluate(model, DataLoader(test, batch_size=256), num_classes=len(config["classes"]))
    seconds = time.perf_counter() - start
    passes = VIEWS[args.tta] * (len(run_dirs) if args.ensemble else 1)
    tta = "" if args.tta == "none" else f", --tta {args.tta}"
    print(f"{what} on {config['data']} ({args.checkpoint} checkpoint{tta}, {passes} forward pass"
          f"{'es' if passes > 1 else ''} per image): test accuracy {result['accuracy']:.2%}, loss "
          f"{result['loss']:.4f}, {result['count']:,} images in {seconds:.1f} s")
    cm = result["confusion"]
    for i, name in enumerate(config["classes"]):
        total = cm[i].sum()
        print(f"  {name:>14}: {cm[i, i] / max(total, 1):7.2%} of {total}")
    return EXIT_OK
