"""Find faces, embed them, compare them: the few verbs most users need.

>>> import strided.face as face
>>> faces = face.detect("group.jpg")             # [{"box", "score", "landmarks", "aligned_box"}, ...]
>>> a = face.embed("me.jpg")                     # (128,) float32, the largest face
>>> face.distance(a, face.embed("me_too.jpg"))   # Euclidean; same person below 0.6
>>> face.verify("me.jpg", "you.jpg")             # {"verified": False, "distance": 0.83, "threshold": 0.6, ...}

The models are face-api 1.7.15's (npm ``@vladmandic/face-api``, installed once with
``strided models fetch face-api``; nothing is downloaded at run time), ported exactly:

* the Tiny Face Detector (:mod:`strided.detect.tiny_face`, input 416, score > 0.5, NMS 0.4),
* the 68-point landmark net (:mod:`strided.models.face_landmarks`, or its tiny variant),
* dlib's ResNet face descriptor (:mod:`strided.models.face_recognition`, 128-d), computed on
  the crop aligned from the eyes and mouth (:mod:`strided.face.align`).

``detect``/``embed`` give what ``faceapi.detectAllFaces(img).withFaceLandmarks()
.withFaceDescriptors()`` gives (tested against it on real photos: landmarks within 1e-3 px,
descriptors within 1e-5).

**The threshold.** Two descriptors of the same person are usually closer than **0.6**
(Euclidean): dlib's threshold for this model (99.38 % accuracy on LFW pairs) and face-api's
default (``FaceMatcher(..., 0.6)``, a match when ``distance < 0.6``).  :func:`verify` uses it
strictly (``verified = distance < threshold``); lower it for fewer false accepts.

Models are loaded once per process (:func:`default_models`); build a :class:`FaceModels` to
choose the folder, the tiny landmark net or the detector's settings, and pass it as ``models=``.
"""
from __future__ import annotations

import hashlib
import numbers
import threading
from pathlib import Path

import numpy as np

from ..data.image import read_image, to_uint8
from ..detect.tiny_face import DEFAULT_INPUT_SIZE, DEFAULT_SCORE_THRESHOLD, TinyFaceDetector
from ..errors import ImageError, StridedError
from ..models import face_landmarks, face_recognition
from ..tensor import Tensor, no_grad
from .align import align_box, crop_face, crop_rect, landmarks_to_image

__all__ = ["DEFAULT_THRESHOLD", "METRICS", "NET_BATCH", "NoFaceError", "FaceModels", "default_models", "load_image",
           "detect", "embed", "embed_images", "distance", "verify", "face_area"]

DEFAULT_THRESHOLD = 0.6          # dlib's / face-api's Euclidean threshold for these descriptors
METRICS = ("euclidean", "cosine")


class NoFaceError(StridedError, ValueError):
    """No face was found where one was needed (``embed``, ``verify``)."""


def load_image(image, name: str = "image") -> np.ndarray:
    """A path (read with :func:`strided.data.image.read_image`) or an ``(H, W, 3)`` array ->
    uint8 RGB ``(H, W, 3)``.  Float arrays are taken as 0..1 (:func:`strided.data.image.to_uint8`)."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{name} must be a path or an RGB image array (H, W, 3), received "
                         f"{type(image).__name__} of shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_):
        raise ImageError(f"{name} must hold uint8 pixels (0..255) or floats (0..1), received dtype {array.dtype}")
    return to_uint8(array)


def _face_dict(box, score, landmarks=None, crop_size=None) -> dict:
    face = {"box": [float(v) for v in box], "score": float(score)}
    if landmarks is not None:
        face["landmarks"] = landmarks.tolist()
        face["aligned_box"] = align_box(landmarks, crop_size)
    return face


def face_area(face) -> float:
    """The area of a face's ``"box"`` ``[x1, y1, x2, y2]``: "the largest face" is the largest box."""
    x1, y1, x2, y2 = face["box"]
    return (x2 - x1) * (y2 - y1)


class FaceModels:
    """face-api's three networks, loaded once: detector, landmarks, descriptor.

    ``model_dir``: face-api's ``model/`` folder (default: :func:`strided.models.faceapi.
    find_faceapi_models`, which names the install command when it is missing);
    ``tiny_landmarks``: use ``face_landmark_68_tiny_model`` (faster, a little less precise);
    ``input_size`` / ``score_threshold``: the detector's defaults (face-api's 416 and 0.5).
    ``detector``, ``landmark_net``, ``recognition_net``: networks already built (a
    :class:`~strided.detect.tiny_face.TinyFaceDetector`, a
    :class:`~strided.models.face_landmarks.FaceLandmark68Net`, a
    :class:`~strided.models.face_recognition.FaceRecognitionNet`) instead of loading them.
    ``fuse``: run the recognition net with its scale layers folded into the convolutions
    (:func:`~strided.models.face_recognition.fuse_recognition_net`; the same descriptors up to
    float32 rounding, ``False`` runs the net as loaded).  ``fast_recognition_net`` is the one
    that runs; ``recognition_net`` keeps the weights as loaded (they name the model).

    **Speed.** The landmark and recognition nets run on all the faces of a photo at once (in
    batches of :data:`NET_BATCH`), and :meth:`detect_many` / :meth:`embed_images` pool the faces
    of ``batch_size`` photos into the same batches; the detector runs photo by photo (a batch of
    416 x 416 maps outgrows the CPU caches and is slower per photo).  A smaller ``input_size``
    (e.g. 224 or 320 for portraits, where the face fills the photo) makes the detector, the
    largest part of the work, 2-3x faster; the boxes, and so the landmarks and descriptors,
    then differ a little from face-api's at 416.
    """

    def __init__(self, model_dir=None, tiny_landmarks: bool = False, input_size: int = DEFAULT_INPUT_SIZE,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, detector=None, landmark_net=None,
                 recognition_net=None, fuse: bool = True):
        if model_dir is None and None in (detector, landmark_net, recognition_net):
            from ..models.faceapi import find_faceapi_models
            model_dir = find_faceapi_models()
        self.model_dir = None if model_dir is None else Path(model_dir)
        if detector is None:
            detector = TinyFaceDetector(self.model_dir, input_size, score_threshold)
        if not isinstance(detector, TinyFaceDetector):
            raise StridedError(f"detector must be a TinyFaceDetector, received {type(detector).__name__}")
        self.detector = detector
        self.landmark_net = (face_landmarks.load_face_landmark_net(self.model_dir, tiny=tiny_landmarks)
                             if landmark_net is None else landmark_net.eval())
        self.recognition_net = (face_recognition.load_face_recognition_net(self.model_dir)
                                if recognition_net is None else recognition_net.eval())
        self.tiny_landmarks = bool(getattr(self.landmark_net, "tiny", tiny_landmarks))
        self.fuse = bool(fuse)
        # what runs: the recognition net with its scale layers folded in (its own weights, untouched,
        # still name the model in embedding_id); a net of another kind (a twin) runs as given
        self.fast_recognition_net = (face_recognition.fuse_recognition_net(self.recognition_net)
                                     if self.fuse and isinstance(self.recognition_net,
                                                                 face_recognition.FaceRecognitionNet)
                                     else self.recognition_net)
        self._embedding_id = None

    def __repr__(self):
        return (f"FaceModels(model_dir={str(self.model_dir)!r}, tiny_landmarks={self.tiny_landmarks}, "
                f"input_size={self.detector.input_size}, score_threshold={self.detector.score_threshold})")

    @property
    def embedding_id(self) -> str:
        """Names the descriptor model and its exact weights (``"faceapi-dlib-resnet128:<12 hex>"``,
        SHA-256 of the weights): embeddings with different ids must not be compared."""
        if self._embedding_id is None:
            digest = hashlib.sha256()
            for name, value in self.recognition_net.state_dict().items():
                digest.update(name.encode())
                digest.update(np.ascontiguousarray(value, np.float32).tobytes())
            self._embedding_id = f"faceapi-dlib-resnet128:{digest.hexdigest()[:12]}"
        return self._embedding_id

    # ----------------------------------------------------------------------------- steps
    def find_faces(self, image, input_size: int | None = None, score_threshold: float | None = None) -> list:
        """The detector alone: ``[{"box": [x1, y1, x2, y2], "score", ...}]``, highest score first."""
        return self.detector.detect(load_image(image), input_size, score_threshold)

    def _landmarks_of(self, jobs) -> list:
        """``[(points, (w, h))]`` for ``jobs`` ``[(uint8 image, box)]``, batched."""
        crops = [crop_face(image, box)[0] for image, box in jobs]
        raw = _run_batched(self.landmark_net, [face_landmarks.preprocess(crop) for crop in crops])
        out = []
        for (_, box), crop, row in zip(jobs, crops, raw):
            relative = face_landmarks.postprocess(row, crop.shape)
            h, w = crop.shape[:2]
            out.append((landmarks_to_image(relative, (w, h), box[:2]), (w, h)))
        return out

    def embed_crops(self, crops) -> np.ndarray:
        """:meth:`embed_crop` of several crops, the recognition net run on all of them at once
        (batches of :data:`NET_BATCH`): ``(n, 128)`` float32."""
        crops = [load_image(crop, "crop") for crop in crops]
        if not crops:
            return np.zeros((0, face_recognition.DESCRIPTOR_SIZE), np.float32)
        return _run_batched(self.fast_recognition_net,
                            [face_recognition.preprocess(crop) for crop in crops]).astype(np.float32)

    def _aligned_crop(self, image, landmarks, crop_size=None) -> np.ndarray:
        box = align_box(landmarks, crop_size)
        x, y, w, h = crop_rect(box, image.shape)
        if w <= 0 or h <= 0:
            raise NoFaceError(f"the aligned face box {box} has no pixel inside the image of shape {image.shape[:2]}")
        return image[y:y + h, x:x + w]

    def landmarks(self, image, box) -> tuple:
        """``(points, crop_size)``: the 68 ``(x, y)`` landmarks (float64, image pixels) of the face in
        ``box`` ``[x1, y1, x2, y2]`` and the ``(w, h)`` of the crop the net saw."""
        image = load_image(image)
        crop, (_, _, w, h) = crop_face(image, box)
        with no_grad():
            raw = self.landmark_net(Tensor(face_landmarks.preprocess(crop))).data[0]
        relative = face_landmarks.postprocess(raw, crop.shape)
        return landmarks_to_image(relative, (w, h), box[:2]), (w, h)

    def embed_crop(self, crop) -> np.ndarray:
        """The descriptor ``(128,)`` float32 of an image taken as the face crop itself (face-api's
        ``computeFaceDescriptor(image)``: centred square, resized to 150), e.g. a pre-aligned photo."""
        crop = load_image(crop, "crop")
        with no_grad():
            out = self.fast_recognition_net(Tensor(face_recognition.preprocess(crop))).data
        return out[0].astype(np.float32)

    def embed_landmarks(self, image, landmarks, crop_size=None) -> np.ndarray:
        """The descriptor ``(128,)`` float32 of the face with these 68 landmarks: the crop of
        :func:`strided.face.align.align_box`, then the recognition net."""
        image = load_image(image)
        return self.embed_crop(self._aligned_crop(image, landmarks, crop_size))

    # ----------------------------------------------------------------------------- verbs
    def detect(self, image, input_size: int | None = None, score_threshold: float | None = None,
               landmarks: bool = True, embeddings: bool = False) -> list:
        """Every face in one photo, highest score first: ``{"box": [x1, y1, x2, y2], "score",
        "landmarks": [[x, y] x 68], "aligned_box": [x1, y1, x2, y2]}`` (image pixels; boxes not
        clipped), plus ``"embedding"`` (a ``(128,)`` float32 array) when ``embeddings``.
        ``landmarks=False`` (and no ``embeddings``) returns boxes and scores only.  A box with no
        pixel inside the image is dropped (face-api drops it too)."""
        return self.detect_many([image], input_size, score_threshold, landmarks, embeddings)[0]

    def detect_many(self, images, input_size: int | None = None, score_threshold: float | None = None,
                    landmarks: bool = True, embeddings: bool = False, batch_size: int = 8,
                    largest_only: bool = False) -> list:
        """:meth:`detect` of each photo of ``images`` (paths or arrays): a list of face lists, in order.

        The faces of ``batch_size`` photos at a time go through the landmark and recognition nets
        together (batches of :data:`NET_BATCH`), so many photos are faster than one by one; the
        results are :meth:`detect`'s up to float32 rounding.  Photos are read ``batch_size`` at a
        time (memory).  ``largest_only=True``: only the largest face of each photo (box area, as
        :meth:`embed` chooses) goes through the landmark and recognition nets; each list then
        holds that one face, with ``"faces_found"`` (how many the detector found), or nothing."""
        batch_size = _check_batch_size(batch_size)
        images = _as_image_list(images)
        results = []
        for start in range(0, len(images), batch_size):
            results += self._detect_chunk(images[start:start + batch_size], input_size, score_threshold,
                                          landmarks, embeddings, largest_only)
        return results

    def _detect_chunk(self, images, input_size, score_threshold, landmarks, embeddings, largest_only) -> list:
        pixels = [load_image(image, _image_name(image, i)) for i, image in enumerate(images)]
        found = [self.find_faces(image, input_size, score_threshold) for image in pixels]
        if not (landmarks or embeddings):
            return [[_face_dict(det["box"], det["score"]) for det in dets] for dets in found]
        # face-api drops boxes with no pixel inside the image
        found = [[det for det in dets if min(crop_rect(det["box"], image.shape)[2:]) > 0]
                 for image, dets in zip(pixels, found)]
        counts = [len(dets) for dets in found]
        if largest_only:
            found = [[max(dets, key=face_area)] if dets else [] for dets in found]
        jobs = [(i, det) for i, dets in enumerate(found) for det in dets]
        points = self._landmarks_of([(pixels[i], det["box"]) for i, det in jobs])
        faces = [_face_dict(det["box"], det["score"], p, size) for (_, det), (p, size) in zip(jobs, points)]
        if embeddings:
            crops = [self._aligned_crop(pixels[i], p, size) for (i, _), (p, size) in zip(jobs, points)]
            for face, vector in zip(faces, self.embed_crops(crops)):
                face["embedding"] = vector
        results = [[] for _ in pixels]
        for (i, _), face in zip(jobs, faces):
            if largest_only:
                face["faces_found"] = counts[i]
            results[i].append(face)
        return results

    def embed_images(self, images, input_size: int | None = None, score_threshold: float | None = None,
                     batch_size: int = 8, return_faces: bool = False):
        """The descriptor of **the largest face** of each photo, ``(n, 128)`` float32, computed in
        batches (:meth:`detect_many`): what enrolling many photos needs.  Raises
        :class:`NoFaceError` naming the first photo without a face.  ``input_size``: the detector's
        (a multiple of 32, 128..608 in face-api's options; default this object's, 416); smaller
        is faster for portraits.  Only each photo's largest face goes through the landmark and
        recognition nets.  ``return_faces=True`` returns ``(descriptors, chosen faces, faces found
        per photo)``."""
        images = _as_image_list(images)
        all_faces = self.detect_many(images, input_size, score_threshold, embeddings=True, batch_size=batch_size,
                                     largest_only=True)
        chosen = []
        for index, (image, faces) in enumerate(zip(images, all_faces)):
            if not faces:
                size = self.detector.input_size if input_size is None else input_size
                threshold = self.detector.score_threshold if score_threshold is None else score_threshold
                raise NoFaceError(f"no face found in {_image_name(image, index)} (detector input {size}, "
                                  f"score > {threshold})")
            chosen.append(faces[0])
        vectors = np.stack([face["embedding"] for face in chosen]) if chosen else \
            np.zeros((0, face_recognition.DESCRIPTOR_SIZE), np.float32)
        if return_faces:
            return vectors, chosen, [face["faces_found"] for face in chosen]
        return vectors

    def choose_face(self, image, face=None, name: str = "image") -> tuple:
        """``(face, faces_found)``: ``face`` as given (a dict from :meth:`detect`, or a box
        ``[x1, y1, x2, y2]``), else the largest detected face (box area).  Raises
        :class:`NoFaceError` when there is none."""
        image = load_image(image, name)
        if face is None:
            [faces] = self.detect_many([image], largest_only=True)     # landmarks of the largest face only
            if not faces:
                raise NoFaceError(f"no face found in {name} (shape {image.shape[:2]}, detector input "
                                  f"{self.detector.input_size}, score > {self.detector.score_threshold})")
            found = faces[0].pop("faces_found")
            return faces[0], found
        if isinstance(face, dict):
            if "box" not in face:
                raise StridedError(f"face must be a dict with a 'box' (from detect) or a box [x1, y1, x2, y2], "
                                   f"received a dict with keys {sorted(face)}")
            if "landmarks" in face:
                return face, 1
            box, score = face["box"], face.get("score", 1.0)
        else:
            box, score = face, 1.0
        points, crop_size = self.landmarks(image, np.asarray(box, np.float64))
        return _face_dict(box, score, points, crop_size), 1

    def embed(self, image, face=None) -> np.ndarray:
        """The ``(128,)`` float32 descriptor of one face: ``face`` (from :meth:`detect`, or a box)
        or, when ``None``, **the largest face** of the photo; :class:`NoFaceError` if there is none."""
        image = load_image(image)
        face, _ = self.choose_face(image, face)
        if "embedding" in face:
            return np.asarray(face["embedding"], np.float32)
        return self.embed_face(image, face)

    def embed_face(self, image, face) -> np.ndarray:
        """The descriptor of a face dict with ``"box"`` and ``"landmarks"`` (from :meth:`detect`)."""
        image = load_image(image)
        crop_size = crop_rect(face["box"], image.shape)[2:] if "box" in face else None
        return self.embed_landmarks(image, face["landmarks"], crop_size)

    def verify(self, image1, image2, threshold: float = DEFAULT_THRESHOLD) -> dict:
        """See :func:`verify`."""
        threshold = _check_threshold(threshold)
        chosen, vectors = [], []
        for index, img in enumerate((image1, image2), start=1):
            name = f"image {index}" + (f" ({img})" if isinstance(img, (str, Path)) else "")
            img = load_image(img, name)
            face, found = self.choose_face(img, name=name)
            vectors.append(self.embed_face(img, face))
            face = dict(face, faces_found=found)
            if found > 1:
                face["note"] = f"{found} faces in {name}; the largest was used"
            chosen.append(face)
        d = distance(vectors[0], vectors[1])
        return {"verified": bool(d < threshold), "distance": d, "threshold": threshold, "metric": "euclidean",
                "faces": chosen}


NET_BATCH = 16      # faces per forward pass of the landmark / recognition nets (32 gains nothing more)


def _run_batched(net, inputs) -> np.ndarray:
    """``net`` on the ``(1, S, S, 3)`` arrays of ``inputs`` stacked, :data:`NET_BATCH` at a time:
    the outputs' rows, in order."""
    outputs = []
    with no_grad():
        for start in range(0, len(inputs), NET_BATCH):
            outputs.append(np.asarray(net(Tensor(np.concatenate(inputs[start:start + NET_BATCH]))).data))
    return np.concatenate(outputs) if outputs else np.zeros((0,), np.float32)


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise StridedError(f"batch_size must be a positive integer (photos per batch), received "
                           f"batch_size={batch_size!r}")
    return int(batch_size)


def _as_image_list(images) -> list:
    """One photo (a path or an ``(H, W, 3)`` array) or a sequence of them -> a list."""
    if isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim == 3):
        return [images]
    return list(images)


def _image_name(image, index: int) -> str:
    return f"image {index}" + (f" ({image})" if isinstance(image, (str, Path)) else "")


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold) \
            or threshold <= 0:
        raise StridedError(f"threshold must be a positive number (Euclidean distance; face-api/dlib use 0.6), "
                           f"received threshold={threshold!r}")
    return float(threshold)


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def default_models(model_dir=None, tiny_landmarks: bool = False) -> FaceModels:
    """The :class:`FaceModels` of this process for ``(model_dir, tiny_landmarks)``, loaded on first use."""
    key = (None if model_dir is None else str(Path(model_dir).resolve()), bool(tiny_landmarks))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = FaceModels(model_dir, tiny_landmarks=tiny_landmarks)
        return _MODELS[key]


def detect(image, input_size: int | None = None, score_threshold: float | None = None, landmarks: bool = True,
           embeddings: bool = False, models: FaceModels | None = None) -> list:
    """Faces in one photo (a path or an ``(H, W, 3)`` array), highest score first::

        [{"box": [x1, y1, x2, y2], "score": 0.97, "landmarks": [[x, y] x 68], "aligned_box": [...]}, ...]

    ``input_size`` (multiple of 32, default 416: larger finds smaller faces) and
    ``score_threshold`` (keep ``score > threshold``, default 0.5) tune the Tiny Face Detector;
    ``embeddings=True`` adds each face's ``"embedding"`` ((128,) float32).  See
    :meth:`FaceModels.detect`."""
    return (models or default_models()).detect(image, input_size, score_threshold, landmarks, embeddings)


def embed_images(images, input_size: int | None = None, batch_size: int = 8,
                 models: FaceModels | None = None) -> np.ndarray:
    """The descriptors ``(n, 128)`` of the largest face of each photo, computed in batches of
    ``batch_size`` photos: the fast way to enroll many photos (:meth:`FaceModels.embed_images`)."""
    return (models or default_models()).embed_images(images, input_size, batch_size=batch_size)


def embed(image, face=None, models: FaceModels | None = None) -> np.ndarray:
    """The 128-d descriptor (float32) of one face of ``image``: ``face`` (a dict from
    :func:`detect` or a box ``[x1, y1, x2, y2]``) or, by default, **the largest face** found.
    Raises :class:`NoFaceError` when the photo has no face."""
    return (models or default_models()).embed(image, face)


def distance(a, b, metric: str = "euclidean"):
    """Distance between descriptors ``a`` and ``b`` (``(128,)`` each, or broadcastable stacks
    ``(..., 128)``): ``"euclidean"`` ``||a - b||`` (face-api's ``euclideanDistance``; same person
    below 0.6) or ``"cosine"`` ``1 - a.b / (||a|| ||b||)`` (0 same direction, 2 opposite).
    A float for two vectors, else an array of the broadcast shape without the last axis."""
    if metric not in METRICS:
        raise StridedError(f"metric must be one of {METRICS}, received metric={metric!r}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1] or a.shape[-1] == 0:
        raise StridedError(f"descriptors must have the same non-empty last axis, received shapes {a.shape} "
                           f"and {b.shape}")
    if metric == "euclidean":
        out = np.sqrt(np.sum((a - b) ** 2, axis=-1))
    else:
        norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
        if np.any(norms == 0):
            raise StridedError("the cosine distance is undefined for an all-zero descriptor")
        out = 1.0 - np.sum(a * b, axis=-1) / norms
    return float(out) if out.ndim == 0 else out


def verify(image1, image2, threshold: float = DEFAULT_THRESHOLD, models: FaceModels | None = None) -> dict:
    """Are the two photos the same person?  The largest face of each is embedded and::

        {"verified": distance < threshold, "distance": Euclidean distance, "threshold": 0.6,
         "metric": "euclidean", "faces": [face of image1, face of image2]}

    Each face is as :func:`detect` gives it, plus ``"faces_found"`` and, when the photo holds
    several faces, a ``"note"`` saying the largest was used.  ``threshold=0.6`` is dlib's and
    face-api's (``FaceMatcher``) Euclidean threshold for these descriptors.  Raises
    :class:`NoFaceError` naming the photo when one has no face."""
    return (models or default_models()).verify(image1, image2, threshold)
