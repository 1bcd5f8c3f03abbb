"""The classifier that ``strided evaluate`` and ``strided predict`` use: one run, or with ``--ensemble``
an :class:`~strided.train.Ensemble` of several (``--weights``), checked to share classes and input
shape; the callers wrap it in a :class:`~strided.tta.TTAModel` for ``--tta``."""
from __future__ import annotations

from ..common import RunDir, is_detection, load_run
from ..errors import CLIError
from .config import parse_number_list
from .embed import refuse_embedding_run

__all__ = ["load_classifier"]


def load_classifier(run_dirs, args, command: str):
    """``(config, model, what)`` for ``evaluate`` / ``predict``: one run, or with ``--ensemble`` an
    :class:`~strided.train.Ensemble` of several (same classes and input shape, checked), with
    ``--tta`` wrapped in a :class:`~strided.tta.TTAModel` by the caller."""
    from ...errors import StridedError
    from ...train import Ensemble

    if len(run_dirs) > 1 and not args.ensemble:
        raise CLIError(f"{command} received {len(run_dirs)} run directories ({', '.join(map(str, run_dirs))}); "
                       f"to average them add --ensemble")
    if args.weights is not None and not args.ensemble:
        raise CLIError("--weights needs --ensemble")
    configs, models = [], []
    for run_dir in run_dirs:
        config = RunDir(run_dir).read_config()
        if is_detection(config):
            raise CLIError(f"{run_dir} is a detection run: --ensemble and --tta apply to classification runs")
        refuse_embedding_run(run_dir, command)
        _, config, model = load_run(run_dir, args.checkpoint)
        first = configs[0] if configs else None
        if first is not None:
            for key, what in (("classes", "classes"), ("image_shape", "input shape (H, W, C)")):
                if list(config[key]) != list(first[key]):
                    raise CLIError(f"--ensemble: {run_dir} and {run_dirs[0]} differ in their {what}: "
                                   f"{config[key]} vs {first[key]}; members must share classes and input shape")
        configs.append(config)
        models.append(model)
    if not args.ensemble:
        return configs[0], models[0], configs[0]["model"]
    weights = None
    if args.weights is not None:
        weights = parse_number_list(args.weights, "--weights")
        if len(weights) != len(models):
            raise CLIError(f"--weights: one weight per run expected ({len(models)} runs), received "
                           f"{len(weights)}: {args.weights}")
    try:
        model = Ensemble(models, weights, input_shape=configs[0]["image_shape"])
    except StridedError as exc:
        raise CLIError(f"--ensemble: {exc}") from None
    names = sorted({c["model"] for c in configs})
    return configs[0], model, f"ensemble of {len(models)} ({'+'.join(names)}, weights " \
                              f"{[round(w, 3) for w in model.weights.tolist()]})"
