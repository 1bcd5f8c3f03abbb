"""face-api (npm ``@vladmandic/face-api``): locating and installing its weights, and its input pipeline.

face-api ships its networks as TF.js weight files in the package's ``model/`` folder,
``<name>-weights_manifest.json`` + ``<name>.bin`` (uint8-quantised), for example
``tiny_face_detector_model``, ``face_landmark_68_model``, ``face_recognition_model``.
strided reads them with :func:`strided.io.read_tfjs`; nothing is downloaded at run time.
Installing is one command, which runs npm::

    strided models fetch face-api          # = install_faceapi()
    npm install --prefix ~/.local/share/strided/face-api @vladmandic/face-api@1.7.15

:func:`find_faceapi_models` looks for the ``model/`` folder, first match wins:

1. ``$STRIDED_FACEAPI_DIR``: the ``model/`` folder itself, or an npm prefix holding
   ``node_modules/@vladmandic/face-api/model``;
2. ``~/.local/share/strided/face-api/node_modules/@vladmandic/face-api/model``
   (where :func:`install_faceapi` puts it by default);
3. ``./node_modules/@vladmandic/face-api/model`` (a project folder with the package);
4. the global npm root (``npm root -g``), if npm is on the ``PATH``.

A folder counts only if it holds ``tiny_face_detector_model-weights_manifest.json``.

**face-api's input pipeline** (``NetInput.toBatchTensor``), shared by all its networks,
is here too, so every port prepares pixels the same way: :func:`pad_to_square` (zeros at
the bottom/right, or centred), :func:`resize_bilinear` (``tf.image.resizeBilinear``'s
arithmetic) and :func:`to_net_input` (both, then float32).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import DatasetUnavailable, ModelFileError, StridedError

__all__ = ["FACEAPI_PACKAGE", "FACEAPI_VERSION", "FACEAPI_ENV", "default_faceapi_prefix",
           "faceapi_search_paths", "find_faceapi_models", "faceapi_model_file", "install_faceapi",
           "js_round", "reshaped_dimensions", "pad_to_square", "resize_bilinear", "to_net_input"]

FACEAPI_PACKAGE = "@vladmandic/face-api"
FACEAPI_VERSION = "1.7.15"
FACEAPI_ENV = "STRIDED_FACEAPI_DIR"
PACKAGE_MODEL_DIR = Path("node_modules", "@vladmandic", "face-api", "model")
MARKER = "tiny_face_detector_model-weights_manifest.json"
INSTALL_COMMAND = "strided models fetch face-api"


def default_faceapi_prefix() -> Path:
    """The npm prefix :func:`install_faceapi` uses by default: ``~/.local/share/strided/face-api``."""
    return Path.home() / ".local" / "share" / "strided" / "face-api"


def _npm_global_root(npm: str = "npm") -> Path | None:
    exe = shutil.which(npm)
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "root", "-g"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    root = done.stdout.strip()
    return Path(root) if done.returncode == 0 and root else None


def faceapi_search_paths(include_global: bool = True) -> list:
    """The candidate ``model/`` folders, in the order :func:`find_faceapi_models` tries them."""
    paths = []
    env = os.environ.get(FACEAPI_ENV)
    if env:
        env_dir = Path(env).expanduser()
        paths += [env_dir, env_dir / PACKAGE_MODEL_DIR]
    paths.append(default_faceapi_prefix() / PACKAGE_MODEL_DIR)
    paths.append(Path.cwd() / PACKAGE_MODEL_DIR)
    if include_global:
        root = _npm_global_root()
        if root is not None:
            paths.append(root / Path(*PACKAGE_MODEL_DIR.parts[1:]))
    return paths


def _missing_message(searched) -> str:
    listed = "\n  ".join(str(p) for p in searched)
    return (f"face-api's weights ({FACEAPI_PACKAGE}@{FACEAPI_VERSION}, file {MARKER}) are not installed.\n"
            f"Install them with:  {INSTALL_COMMAND}\n"
            f"(or: npm install --prefix {default_faceapi_prefix()} {FACEAPI_PACKAGE}@{FACEAPI_VERSION}),\n"
            f"or set {FACEAPI_ENV} to a folder holding them. Looked in:\n  {listed}")


def find_faceapi_models(required: bool = True) -> Path | None:
    """Path of face-api's ``model/`` folder (see the module docstring for the search order).

    Raises :class:`~strided.errors.DatasetUnavailable` with the install command when it
    is nowhere (``required=False`` returns ``None`` instead).
    """
    searched = faceapi_search_paths()
    for folder in searched:
        if (folder / MARKER).is_file():
            return folder
    if required:
        raise DatasetUnavailable(_missing_message(searched))
    return None


def faceapi_model_file(name: str, model_dir=None) -> Path:
    """The manifest of one face-api network, e.g. ``faceapi_model_file("tiny_face_detector_model")``
    -> ``.../model/tiny_face_detector_model-weights_manifest.json`` (read it with
    :func:`strided.io.read_tfjs`).  ``model_dir`` defaults to :func:`find_faceapi_models`."""
    folder = find_faceapi_models() if model_dir is None else Path(model_dir)
    path = folder / f"{name}-weights_manifest.json"
    if not path.is_file():
        available = sorted(p.name[: -len("-weights_manifest.json")] for p in folder.glob("*-weights_manifest.json"))
        raise DatasetUnavailable(f"face-api model {name!r} is not in {str(folder)!r} (no {path.name}); "
                                 f"models there: {available}. Reinstall with: {INSTALL_COMMAND}")
    return path


def load_faceapi_net(make_net, name: str, to_state_dict, path=None, what: str = "its weights"):
    """One face-api network with its pretrained weights, in eval mode: ``make_net()`` (called
    once the file is found) loaded with them.

    ``name``: the model's file stem (``"face_recognition_model"``); ``path``: its
    ``<name>-weights_manifest.json`` or face-api's ``model/`` folder, default found by
    :func:`find_faceapi_models`.  ``to_state_dict`` maps the TF.js weight map to the
    network's state dict.  A file that is not the network's raises :class:`ModelFileError` naming
    ``path`` and ``what`` (e.g. ``"face-api's landmark weights"``).
    """
    from ..io.tfjs import read_tfjs

    if path is None or Path(path).is_dir():
        path = faceapi_model_file(name, path)
    net = make_net()
    try:
        net.load_state_dict(to_state_dict(read_tfjs(path)))
    except ModelFileError as exc:
        raise ModelFileError(f"{str(path)!r}: {exc}") from None
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} does not hold {what}: {exc}") from None
    return net.eval()


def install_faceapi(dest=None, npm: str = "npm", timeout: float = 600) -> Path:
    """Install ``@vladmandic/face-api@1.7.15`` (only that package) with npm; returns its ``model/`` folder.

    Runs ``npm install --prefix DEST @vladmandic/face-api@1.7.15``; ``dest`` defaults to
    :func:`default_faceapi_prefix`, which :func:`find_faceapi_models` searches.  Raises
    :class:`~strided.errors.StridedError` when npm is missing or fails (with npm's last
    lines of output).
    """
    exe = shutil.which(npm)
    if exe is None:
        raise StridedError(f"npm is needed to install face-api's weights but was not found "
                           f"(received npm={npm!r}); install Node.js and npm (e.g. `apt install npm`), "
                           f"or pass the path of an npm executable")
    prefix = Path(dest).expanduser() if dest is not None else default_faceapi_prefix()
    prefix.mkdir(parents=True, exist_ok=True)
    command = [exe, "install", "--prefix", str(prefix), f"{FACEAPI_PACKAGE}@{FACEAPI_VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StridedError(f"`{' '.join(command)}` did not finish in {timeout} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise StridedError(f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{tail}")
    folder = prefix / PACKAGE_MODEL_DIR
    if not (folder / MARKER).is_file():
        raise StridedError(f"`{' '.join(command)}` succeeded but {str(folder / MARKER)!r} does not exist; "
                           f"the package's layout is not the expected one")
    return folder


# ---------------------------------------------------------------------------------- input pipeline
def js_round(x: float) -> int:
    """JavaScript's ``Math.round``: halves go up (``js_round(2.5) == 3``, ``js_round(-2.5) == -2``),
    unlike Python's ``round`` (halves to even)."""
    return int(math.floor(x + 0.5))


def reshaped_dimensions(height: int, width: int, input_size: int) -> tuple:
    """``(width, height)`` of the image inside the ``input_size`` square after padding and
    resizing, rounded as face-api's ``computeReshapedDimensions`` does (``Math.round``)."""
    scale = input_size / max(height, width)
    return js_round(width * scale), js_round(height * scale)


def pad_to_square(image, center: bool = False, dtype=np.float32) -> np.ndarray:
    """``(H, W, C)`` -> ``(S, S, C)`` with ``S = max(H, W)``, padded with zeros, as face-api's
    ``padToSquare``: at the bottom (H < W) or right (W < H) by default; ``center=True`` puts
    ``round(diff / 2)`` (``Math.round``) after the image and the rest before it.  The result
    is float32 as in TF.js (``dtype=None`` keeps the input's dtype: for uint8 pixels the
    same values, 4x less memory).  A square image is returned unchanged (converted)."""
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"pad_to_square needs an (H, W, C) image, received shape {image.shape}")
    dtype = image.dtype if dtype is None else np.dtype(dtype)
    height, width = image.shape[:2]
    size = max(height, width)
    if height == width:
        return image.astype(dtype, copy=False)
    diff = size - min(height, width)
    after = js_round(diff * 0.5) if center else diff
    before = diff - after
    out = np.zeros((size, size, image.shape[2]), dtype)
    if height > width:
        out[:, before:before + width] = image
    else:
        out[before:before + height] = image
    return out


def _source_index(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool):
    """(floor index, ceil index, fraction) along one axis, in float64, as TF's CPU kernel."""
    scale = ((in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size)
    dst = np.arange(out_size, dtype=np.float64)
    src = scale * (dst + 0.5) - 0.5 if half_pixel_centers else scale * dst
    low = np.maximum(0, np.floor(src)).astype(np.int64)
    high = np.minimum(in_size - 1, np.ceil(src)).astype(np.int64)
    return low, high, src - low


def _padded_take(x: np.ndarray, index: np.ndarray, axis: int, before: int) -> np.ndarray:
    """``np.take(padded, index, axis)`` where ``padded`` is ``x`` with zeros put before (``before``
    of them) and after it along ``axis``, without building ``padded``: indices outside ``x`` give 0."""
    length = x.shape[axis]
    shifted = index - before
    out = np.take(x, np.clip(shifted, 0, length - 1), axis=axis)
    outside = (shifted < 0) | (shifted >= length)
    if outside.any():
        where = [slice(None)] * out.ndim
        where[axis] = outside
        out[tuple(where)] = 0
    return out


def _interpolate(x, rows, cols, compute_dtype, row_pad: int = 0, col_pad: int = 0) -> np.ndarray:
    """The bilinear arithmetic of :func:`resize_bilinear` from the ``(low, high, fraction)`` of
    :func:`_source_index` for rows and columns; ``row_pad`` / ``col_pad``: zeros before ``x``
    (the source is ``x`` padded with zeros to cover every index)."""
    (r0, r1, fy), (c0, c1, fx) = rows, cols
    dtype = np.dtype(compute_dtype)
    # gather the rows and columns used in the input's dtype (small), then compute in ``dtype``
    top_rows, bottom_rows = _padded_take(x, r0, x.ndim - 3, row_pad), _padded_take(x, r1, x.ndim - 3, row_pad)
    fx, fy = fx.astype(dtype)[:, None], fy.astype(dtype)[:, None, None]

    def blend(rows_):                  # left + (right - left) * fx, in place
        left = _padded_take(rows_, c0, x.ndim - 2, col_pad).astype(dtype)
        out = _padded_take(rows_, c1, x.ndim - 2, col_pad).astype(dtype)
        out -= left
        out *= fx
        out += left
        return out

    top = blend(top_rows)
    out = blend(bottom_rows)           # top + (bottom - top) * fy
    out -= top
    out *= fy
    out += top
    return out.astype(np.float32, copy=False)


def resize_bilinear(images, size, align_corners: bool = False, half_pixel_centers: bool = False,
                    compute_dtype=np.float32) -> np.ndarray:
    """Bilinear resize exactly as ``tf.image.resizeBilinear`` (TF.js CPU backend) computes it.

    ``images``: ``(H, W, C)`` or ``(N, H, W, C)``, any real dtype; ``size``: ``(new_h, new_w)``
    or an int.  Returns float32 of the new size.  For output row ``r`` (columns alike)::

        scale = (H - 1) / (new_h - 1)  if align_corners (and new_h > 1)  else  H / new_h
        src   = scale * (r + 0.5) - 0.5  if half_pixel_centers  else  scale * r
        r0 = max(0, floor(src)),  r1 = min(H - 1, ceil(src)),  fy = src - r0
        top = x[r0, c0] + (x[r0, c1] - x[r0, c0]) * fx          (bottom likewise with r1)
        out = top + (bottom - top) * fy

    The indices and fractions are computed in float64 as TF.js does; the blend in
    ``compute_dtype``: float32 by default (fast; within float32 rounding of TF.js, which blends
    in JavaScript doubles), ``np.float64`` for TF.js' exact arithmetic (one rounding at the end).

    face-api uses the default, ``align_corners=False, half_pixel_centers=False``: the
    *legacy, asymmetric* mapping ``src = r * H / new_h``, where output pixel 0 is input
    pixel 0 and the image shifts by up to one input pixel towards the top-left.  PyTorch's
    ``F.interpolate(mode="bilinear", align_corners=False)`` is the ``half_pixel_centers=True``
    mapping (the same numbers here), and ``align_corners=True`` is the same in both; the
    legacy mapping has no PyTorch (or OpenCV) equivalent: identical only when the size does
    not change or for the first row and column.
    """
    x = np.asarray(images)
    if x.ndim not in (3, 4) or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"resize_bilinear needs a numeric (H, W, C) or (N, H, W, C) array, "
                         f"received shape {x.shape} dtype {x.dtype}")
    new_h, new_w = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if new_h < 1 or new_w < 1:
        raise ValueError(f"size must be positive, received size={size!r}")
    if np.dtype(compute_dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"compute_dtype must be float32 or float64, received compute_dtype={compute_dtype!r}")
    height, width = x.shape[-3:-1]
    return _interpolate(x, _source_index(new_h, height, align_corners, half_pixel_centers),
                        _source_index(new_w, width, align_corners, half_pixel_centers), compute_dtype)


def _square_padding(height: int, width: int, center: bool) -> tuple:
    """``(rows before, columns before)``: the zeros :func:`pad_to_square` puts before the image."""
    diff = abs(height - width)
    before = diff - js_round(diff * 0.5) if center else 0
    return (before, 0) if height < width else (0, before)


def to_net_input(image, input_size: int, center: bool = False, compute_dtype=np.float32) -> np.ndarray:
    """face-api's ``NetInput.toBatchTensor(input_size, center)`` for one ``(H, W, 3)`` image:
    :func:`pad_to_square`, then :func:`resize_bilinear` (legacy mapping) to ``input_size``
    unless already that size; returns float32 ``(1, input_size, input_size, 3)`` in the
    image's own value range (0..255 for uint8 pixels), always a new array (never a view of ``image``).

    The padded square is never built: the resize reads the zeros of the padding where its
    indices fall outside the image (the same numbers, without a copy of a large photo)."""
    image = given = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"to_net_input needs an (H, W, C) image, received shape {image.shape}")
    # TF.js casts to float32 first; uint8 -> float32 is exact, so uint8 is read as it is
    if image.dtype != np.uint8:
        image = image.astype(np.float32, copy=False)
    height, width = image.shape[:2]
    size = max(height, width)
    if size == input_size:
        square = pad_to_square(image, center)
        return (square.copy() if np.shares_memory(square, given) else square)[None]
    index = _source_index(input_size, size, False, False)
    row_pad, col_pad = _square_padding(height, width, center)
    return _interpolate(image, index, index, compute_dtype, row_pad, col_pad)[None]
