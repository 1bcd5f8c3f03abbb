"""``strided predict``: the top classes per image, with a trained run (or an ensemble of runs), or with
pretrained ImageNet weights (``--pretrained``); ``--tta`` averages the probabilities of the views."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common import RunDir, is_detection, read_image_for_model, read_rgb
from ..errors import EXIT_OK, CLIError
from .ensemble import load_classifier

__all__ = ["WEIGHT_SUFFIXES", "tta_probabilities", "predict_pretrained", "cmd_predict"]


# what `predict --pretrained X` takes as a weight file; anything else after it is an image
WEIGHT_SUFFIXES = (".pth", ".pt", ".tar", ".bin", ".ckpt", ".safetensors", ".npz")


def tta_probabilities(model, image_paths, shape, mode: str, normalise=None) -> np.ndarray:
    """``(N, K)`` probabilities of image files with ``--tta mode`` for a model taking ``shape`` (H, W, C):
    an image already ``H x W`` is padded to the canvas, any other is resized so its shorter side is
    ``round(H / 0.875)`` and the views cut from it (``normalise`` maps float [0, 1] pixels to the
    model's input; default as is)."""
    from ...data.image import to_float
    from ...tta import CROP_FRACTION, predict_tta, resize_shorter_side

    H, W, C = (int(v) for v in shape)
    out = []
    for path in image_paths:
        if not Path(path).exists():
            raise CLIError(f"image {str(path)!r} does not exist")
        image = read_rgb(path, grayscale=C == 1)
        if image.shape[:2] != (H, W):
            image = resize_shorter_side(image, int(round(min(H, W) / CROP_FRACTION)))
        x = to_float(image)[None]
        if normalise is not None:
            x = normalise(x)
        out.append(predict_tta(model, x, mode, size=H))
    return np.concatenate(out)


def predict_pretrained(args) -> int:
    """``strided predict --model NAME --pretrained [PATH] IMAGE...``: ImageNet top-k per image."""
    from ... import models
    from ...errors import CheckpointError
    from ...models.imagenet import IMAGENET_CLASSES
    from ...models.pretrained import classify, pretrained_models, pretrained_weights_path

    images, weights = list(args.paths), args.pretrained
    # `--pretrained IMAGE`: argparse gave the first image to --pretrained
    if isinstance(weights, str) and not weights.lower().endswith(WEIGHT_SUFFIXES):
        images, weights = [weights, *images], True
    if not images:
        raise CLIError("predict --pretrained needs at least one IMAGE")
    name = args.model or "efficientnet_lite0"
    if name not in pretrained_models():
        raise CLIError(f"--pretrained: no pretrained weights are known for model {name!r}; models with "
                       f"pretrained weights: {', '.join(pretrained_models())}")
    top = 5 if args.top is None else args.top
    if not 1 <= top <= len(IMAGENET_CLASSES):
        raise CLIError(f"--top must be in 1..{len(IMAGENET_CLASSES)}, received {top}")
    if isinstance(weights, str) and not Path(weights).is_file():
        raise CLIError(f"--pretrained: weight file {weights!r} does not exist")
    try:
        model = models.create(name, pretrained=weights)
        source = weights if isinstance(weights, str) else pretrained_weights_path(name)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except (CheckpointError, ValueError, OSError) as exc:
        raise CLIError(f"--pretrained: {exc}") from None
    if args.ensemble or args.weights is not None:
        raise CLIError("--ensemble averages runs of `strided train` (RUN_DIR RUN_B ... IMAGE...), not --pretrained")
    print(f"{name}, pretrained on ImageNet ({source})")
    if args.tta != "none":
        from ...models.pretrained import IMAGE_SIZE, MEAN_RGB, STDDEV_RGB

        def normalise(x):      # the float [0, 1] canvas -> (x * 255 - 127) / 128, as preprocess does
            return (x * 255.0 - np.float32(MEAN_RGB[0])) / np.float32(STDDEV_RGB[0])

        probs = tta_probabilities(model, images, (IMAGE_SIZE, IMAGE_SIZE, 3), args.tta, normalise)
        print(f"--tta {args.tta}: probabilities averaged over the views of each photo (shorter side resized to "
              f"{int(round(IMAGE_SIZE / 0.875))}, crops of {IMAGE_SIZE})")
        for path, p in zip(images, probs):
            order = np.argsort(-p)[:top]
            print(f"{path}: " + ", ".join(f"{IMAGENET_CLASSES[i]} {p[i]:.1%}" for i in order))
        return EXIT_OK
    arrays = [read_rgb(p) for p in images]        # all read before any output
    for path, image in zip(images, arrays):
        print(f"{path}: " + ", ".join(f"{label} {p:.1%}" for _, label, p in classify(model, image, top)))
    return EXIT_OK


def cmd_predict(args) -> int:
    """``strided predict RUN_DIR IMAGE...`` (or ``--pretrained``): the top classes per image."""
    from ...train import predict

    if args.pretrained is not None:
        return predict_pretrained(args)
    if args.model is not None:
        raise CLIError(f"--model {args.model} needs --pretrained (weights of a trained run come with RUN_DIR: "
                       f"`strided predict RUN_DIR IMAGE...`)")
    if len(args.paths) < 2:
        raise CLIError("predict needs RUN_DIR and at least one IMAGE (or --pretrained and images)")
    # with --ensemble the leading directories are the runs; otherwise only the first path is
    n_runs = 1
    if args.ensemble:
        while n_runs < len(args.paths) - 1 and Path(args.paths[n_runs]).is_dir():
            n_runs += 1
    run_dirs, image_paths = args.paths[:n_runs], args.paths[n_runs:]
    top = 3 if args.top is None else args.top
    if top < 1:
        raise CLIError(f"--top must be >= 1, received {top}")
    run_dir = run_dirs[0]
    config = RunDir(run_dir).read_config()
    if is_detection(config):
        raise CLIError(f"{run_dir} is a detection run: find its objects with `strided detect IMAGE... --model "
                       f"{run_dir}`")
    config, model, _ = load_classifier(run_dirs, args, "predict")
    shape = tuple(config["image_shape"])
    if args.tta != "none":
        probs = tta_probabilities(model, image_paths, shape, args.tta)
    else:
        images = np.stack([read_image_for_model(p, shape) for p in image_paths])
        probs = predict(model, images)
    classes = config["classes"]
    for path, p in zip(image_paths, probs):
        order = np.argsort(-p)[:min(top, len(classes))]
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.1%}" for i in order))
    return EXIT_OK
