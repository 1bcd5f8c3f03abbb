"""``strided train | evaluate | predict``: the training commands.

    strided train --model lenet5 --data fashion-mnist --epochs 10 --batch-size 64 --lr 1e-3 --out RUN_DIR
    strided train --resume RUN_DIR              # continue an interrupted run exactly (--epochs may extend it)
    strided train --model lenet5 --data folder:photos/ --input-size 32 --out RUN_DIR   # photos of any size
    strided evaluate RUN_DIR                     # test accuracy and confusion matrix of the best checkpoint
    strided predict RUN_DIR IMAGE... --top 3     # class names with probabilities
    strided predict --model efficientnet_lite0 --pretrained IMAGE... --top 5   # pretrained ImageNet classes
    strided evaluate RUN_DIR --tta 10crop       # test-time augmentation: none | flip | 10crop (probabilities averaged)
    strided train --seeds 0,1,2 --out runs/m ... # three runs differing only by seed: runs/m-seed0, -seed1, -seed2
    strided evaluate runs/m-seed0 runs/m-seed1 runs/m-seed2 --ensemble [--weights 1,2,1] [--tta flip]
    strided predict RUN_A RUN_B IMAGE... --ensemble --tta flip
    strided predict --model efficientnet_lite0 --pretrained IMAGE... --tta 10crop
    strided train --task detect --model yolo_tiny --data digit-scenes --epochs 30 --augment --out RUN_DIR
    strided evaluate RUN_DIR                     # a detection run: mAP50, mAP50-95, per-class AP, pr_curve.png

A run directory (:class:`~strided.cli.common.RunDir`) holds ``config.json`` (everything
needed to rebuild the run), ``checkpoints/{best,last}.safetensors``, ``metrics.json``
(history and test results) and the pictures ``curves.png``, ``confusion.png``,
``predictions.png``.  ``--out`` on an existing run is refused unless ``--overwrite``.

One module a job:

* :mod:`~strided.cli.train.commands`: the three parsers (:func:`register`) and :func:`cmd_train`,
  which sends a run to its task (or ``--seeds``: one run per seed);
* :mod:`~strided.cli.train.config`: the options' defaults, a new run's ``config.json``, ``--resume``;
* :mod:`~strided.cli.train.session`: what the tasks share while training (data, optimizer,
  Trainer per phase, the phases);
* :mod:`~strided.cli.train.classify`, :mod:`~strided.cli.train.detect`,
  :mod:`~strided.cli.train.embed`: ``--task classify`` (default), ``detect`` (YOLO on scenes,
  and ``evaluate`` of such a run), ``embed`` (metric learning);
* :mod:`~strided.cli.train.ensemble`: one run or an ensemble of runs for ``evaluate`` / ``predict``;
* :mod:`~strided.cli.train.evaluate` and :mod:`~strided.cli.train.predict`: those two commands
  (``--tta``, ``--ensemble``, ``predict --pretrained``).
"""
from .classify import final_report, load_training_data
from .commands import cmd_train, register
from .config import TRAIN_DEFAULTS, TRANSFER_DEFAULTS, new_run, resume_run
from .embed import EMBED_DEFAULTS, train_embed
from .evaluate import cmd_evaluate
from .predict import cmd_predict
from .session import build_optimizer, make_trainer

__all__ = ["register", "cmd_train", "cmd_evaluate", "cmd_predict", "new_run", "resume_run",
           "load_training_data", "make_trainer", "final_report", "build_optimizer", "TRAIN_DEFAULTS",
           "TRANSFER_DEFAULTS", "EMBED_DEFAULTS", "train_embed"]
