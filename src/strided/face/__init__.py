"""strided.face: find faces, align them, embed them (128-d), verify and recognise.

>>> import strided.face as face
>>> face.verify("a.jpg", "b.jpg")      # {"verified": True, "distance": 0.41, "threshold": 0.6, ...}

Models: face-api 1.7.15's Tiny Face Detector, 68-point landmark net and dlib ResNet
descriptor, ported exactly (:mod:`strided.face.api`, :mod:`strided.face.align`).
"""
from .align import align_box, crop_face, extract_faces, landmark_box
from .api import (DEFAULT_THRESHOLD, FaceModels, NoFaceError, default_models, detect, distance, embed,
                  embed_images, load_image, verify)
from .database import (UNKNOWN, DatabaseCorrupted, FaceDatabase, FaceDatabaseError, Match, ModelMismatch,
                       UnknownPerson)
from .evaluation import (equal_error_rate, evaluate_pairs, kfold_accuracy, n_way_one_shot_accuracy, read_lfw_pairs,
                         roc_curve, tar_at_far, verification_report, write_roc_png)
from .losses import (SiameseHead, batch_all_triplet_loss, batch_contrastive_loss, batch_hard_triplet_loss,
                     contrastive_loss, semi_hard_triplet_loss, triplet_loss)

__all__ = ["detect", "embed", "embed_images", "distance", "verify", "FaceModels", "default_models", "NoFaceError",
           "DEFAULT_THRESHOLD", "load_image", "align_box", "crop_face", "extract_faces", "landmark_box",
           "FaceDatabase", "Match", "UNKNOWN", "FaceDatabaseError", "DatabaseCorrupted", "ModelMismatch",
           "UnknownPerson", "roc_curve", "equal_error_rate", "tar_at_far", "kfold_accuracy", "verification_report",
           "read_lfw_pairs", "evaluate_pairs", "write_roc_png", "n_way_one_shot_accuracy", "triplet_loss",
           "batch_all_triplet_loss", "batch_hard_triplet_loss", "semi_hard_triplet_loss", "contrastive_loss",
           "batch_contrastive_loss", "SiameseHead"]
