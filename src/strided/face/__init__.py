"""strided.face: find faces, align them, embed them (128-d), verify and recognise.

>>> import strided.face as face
>>> face.verify("a.jpg", "b.jpg")      # {"verified": True, "distance": 0.41, "threshold": 0.6, ...}

Models: face-api 1.7.15's Tiny Face Detector, 68-point landmark net and dlib ResNet
descriptor, ported exactly (:mod:`strided.face.api`, :mod:`strided.face.align`).
"""
from .align import align_box, crop_face, extract_faces, landmark_box
from .api import (DEFAULT_THRESHOLD, FaceModels, NoFaceError, default_models, detect, distance, embed,
                  load_image, verify)

__all__ = ["detect", "embed", "distance", "verify", "FaceModels", "default_models", "NoFaceError",
           "DEFAULT_THRESHOLD", "load_image", "align_box", "crop_face", "extract_faces", "landmark_box"]
