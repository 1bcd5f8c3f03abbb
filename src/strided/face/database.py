"""A database of enrolled people for 1:K face recognition.

>>> models = strided.face.default_models()
>>> db = FaceDatabase("people.facedb", model_id=models.embedding_id)   # creates it
>>> db.enroll("Grace Hopper", embeddings)          # (D,) or (n, D): several photos per person
>>> db.enroll_images("Ada", ["ada1.jpg", "ada2.jpg"], embed=models)    # batched; or embed=models.embed
>>> [m.name for m in db.identify(query_embeddings, threshold=0.6)]
['Grace Hopper', 'unknown']
>>> db.remove("Ada"); db.names()

The database takes EMBEDDINGS: it knows nothing about the network that made them, except
its ``model_id``, and refuses embeddings of another model (distances between embeddings of
two models mean nothing).  Images go through an ``embed(image) -> (D,)`` callable
(``strided.face.embed``, ``FaceModels.embed`` or any other), given to :meth:`enroll_images`
or the constructor; ``FaceModels.embedding_id`` names the model and its exact weights.

**Matching.** ``identify`` gives each face the person of its NEAREST ENROLLED EMBEDDING
(``strategy="nearest"``, as ``face_recognition.compare_faces`` compares with every known
encoding): with several photos per person, the closest photo decides, so a person photographed
from different angles is recognised from any of them.  ``strategy="mean"`` compares with
each person's mean embedding instead (one point per person; smoother, but a mean of
dissimilar photos can be far from all of them).  The face is ``"unknown"`` when that
distance is greater than ``threshold`` (accepted when ``distance <= threshold``).  Distances
are Euclidean; 0.6 is the threshold dlib and face-api use for their 128-d descriptors.

**Search** is one matrix product: ``||q||^2 - 2 q.E^T + ||E||^2`` against all ``M``
enrolled embeddings ``E`` (squared norms kept), then one ``argmin`` per face; the reported
distance is recomputed exactly (float64) for the chosen embedding.

**On disk** ``path`` is a folder::

    index.json                         format, model_id, dim, created, updated, names,
                                       shards [{file, count, sha256}]
    embeddings-<gen>-<tag>.safetensors "embeddings" (n, D) float32, "labels" (n,) int64

Every file is written atomically (``strided.fileio.atomic_write``).  Enrolling adds one new
shard and then rewrites ``index.json`` (incremental: nothing already stored is rewritten);
removing a person rewrites the rest as one shard.  A crash at any moment leaves the last
complete state (``index.json`` names only complete shards; a shard left over by a crash is
deleted by the next write).  Reading checks each shard's SHA-256, shape and labels: a damaged
database raises :class:`DatabaseCorrupted` and is never written to.  One writer at a time.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StridedError
from ..fileio import atomic_write, atomic_write_json

__all__ = ["FaceDatabase", "Match", "FaceDatabaseError", "DatabaseCorrupted", "ModelMismatch",
           "UnknownPerson", "UNKNOWN", "STRATEGIES"]

UNKNOWN = "unknown"
STRATEGIES = ("nearest", "mean")
FORMAT = "strided.face.FaceDatabase"
VERSION = 1
INDEX = "index.json"
SHARD_PREFIX = "embeddings-"
SHARD_SUFFIX = ".safetensors"
MAX_SHARDS = 32                       # enrolling compacts into one shard beyond this


class FaceDatabaseError(StridedError, ValueError):
    """A face database operation that cannot be done (bad name, embeddings, path...)."""


class DatabaseCorrupted(FaceDatabaseError):
    """The files of a face database are damaged or inconsistent; nothing was written."""


class ModelMismatch(FaceDatabaseError):
    """Embeddings of one model given to a database of another model."""


class UnknownPerson(FaceDatabaseError, LookupError):
    """A name that is not enrolled."""


@dataclass(frozen=True)
class Match:
    """The answer for one face: ``name`` (or ``"unknown"``), the ``distance`` to the nearest
    enrolled person (``None`` for an empty database) and that person (``nearest``, also
    when the face is unknown)."""
    name: str
    distance: float | None
    nearest: str | None

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    def to_dict(self) -> dict:
        return {"name": self.name, "distance": self.distance, "nearest": self.nearest}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise FaceDatabaseError(f"a person's name must be a non-empty string, received {name!r}")
    if name != name.strip() or any(ord(c) < 32 for c in name) or len(name) > 200:
        raise FaceDatabaseError(f"a person's name must have no leading/trailing spaces or control "
                                f"characters and at most 200 characters, received {name!r}")
    if name == UNKNOWN:
        raise FaceDatabaseError(f"{UNKNOWN!r} is reserved for faces nobody enrolled matches; "
                                f"choose another name")
    return name


class FaceDatabase:
    """Enrolled people and their face embeddings, for :meth:`identify` (1:K search).

    Parameters
    ----------
    path : the database folder.  It is created when it does not exist (then ``model_id``
        is required); an existing database is opened.
    model_id : the model whose embeddings this database holds (e.g. ``FaceModels.embedding_id``,
        ``"faceapi-dlib-resnet128:<sha>"``).
        Opening an existing database with another ``model_id`` raises :class:`ModelMismatch`;
        ``None`` opens it whatever its model.
    embed : default ``embed(image) -> (D,)`` for :meth:`enroll_images`.
    """

    def __init__(self, path, model_id: str | None = None, embed=None):
        self.path = Path(path)
        self.embed = embed
        if model_id is not None and (not isinstance(model_id, str) or not model_id.strip()):
            raise FaceDatabaseError(f"model_id must be a non-empty string, received {model_id!r}")
        index = self.path / INDEX
        if self.path.exists() and not self.path.is_dir():
            raise FaceDatabaseError(f"{str(self.path)!r} is a file; a face database is a folder "
                                    f"(holding {INDEX})")
        if index.exists():
            self._load()
            if model_id is not None and model_id != self.model_id:
                raise ModelMismatch(f"the face database {str(self.path)!r} holds embeddings of model "
                                    f"{self.model_id!r}, received model_id={model_id!r}: embeddings "
                                    f"of different models cannot be compared; use one database "
                                    f"per model")
            return
        if self.path.is_dir() and any(self.path.iterdir()):
            raise FaceDatabaseError(f"{str(self.path)!r} is a folder without {INDEX}: not a face "
                                    f"database (refusing to write into it); give a new or empty "
                                    f"folder")
        if model_id is None:
            raise FaceDatabaseError(f"no face database at {str(self.path)!r}; to create one, pass "
                                    f"model_id= (the model that makes its embeddings)")
        self.model_id = model_id
        self.dim: int | None = None
        self.created = self.updated = _now()
        self._people: list[str] = []
        self._shards: list[dict] = []
        self._set_arrays(np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
        self._write_index()

    # ------------------------------------------------------------------ reading
    def _corrupt(self, what: str) -> DatabaseCorrupted:
        return DatabaseCorrupted(f"face database {str(self.path)!r} is damaged: {what}. Nothing was "
                                 f"written; restore it from a backup or enroll into a new database")

    def _load(self) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        index_path = self.path / INDEX
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._corrupt(f"{INDEX} is not readable JSON ({exc})") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise self._corrupt(f"{INDEX} is not a strided face database index "
                                f"(format {index.get('format') if isinstance(index, dict) else None!r})")
        if index.get("version") != VERSION:
            raise FaceDatabaseError(f"face database {str(self.path)!r} has version "
                                    f"{index.get('version')!r}; this strided reads version {VERSION}")
        try:
            self.model_id = str(index["model_id"])
            self.dim = None if index["dim"] is None else int(index["dim"])
            self.created, self.updated = str(index["created"]), str(index["updated"])
            self._people = [str(n) for n in index["names"]]
            self._shards = [{"file": str(s["file"]), "count": int(s["count"]),
                             "sha256": str(s["sha256"])} for s in index["shards"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._corrupt(f"{INDEX} lacks or garbles a field ({exc!r})") from None
        embeddings, labels = [], []
        for shard in self._shards:
            file = self.path / shard["file"]
            if Path(shard["file"]).name != shard["file"] or not file.is_file():
                raise self._corrupt(f"shard {shard['file']!r} named in {INDEX} is missing")
            if _sha256(file) != shard["sha256"]:
                raise self._corrupt(f"shard {shard['file']!r} does not match its SHA-256 in {INDEX} "
                                    f"(changed or truncated)")
            try:
                arrays = load_file(str(file))
                e, y = arrays["embeddings"], arrays["labels"]
            except (SafetensorError, OSError, KeyError, ValueError) as exc:
                raise self._corrupt(f"shard {shard['file']!r} is not readable ({exc!r})") from None
            if e.dtype != np.float32 or e.shape != (shard["count"], self.dim) or \
                    y.shape != (shard["count"],) or y.dtype != np.int64:
                raise self._corrupt(f"shard {shard['file']!r} holds embeddings {e.shape} {e.dtype} and "
                                    f"labels {y.shape} {y.dtype}, expected ({shard['count']}, "
                                    f"{self.dim}) float32 and ({shard['count']},) int64")
            if y.size and (y.min() < 0 or y.max() >= len(self._people)):
                raise self._corrupt(f"shard {shard['file']!r} has labels outside the "
                                    f"{len(self._people)} enrolled names")
            embeddings.append(e)
            labels.append(y)
        dim = self.dim or 0
        self._set_arrays(np.concatenate(embeddings) if embeddings else np.zeros((0, dim), np.float32),
                         np.concatenate(labels) if labels else np.zeros(0, np.int64))

    def _set_arrays(self, embeddings: np.ndarray, labels: np.ndarray, sq_norms=None) -> None:
        self._embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self._labels = labels.astype(np.int64, copy=False)
        self._sq_norms = (np.einsum("ij,ij->i", self._embeddings, self._embeddings)
                          if sq_norms is None else sq_norms)
        self._means = None

    # ------------------------------------------------------------------ writing
    def _write_index(self) -> None:
        self.updated = _now()
        atomic_write_json(self.path / INDEX, {
            "format": FORMAT, "version": VERSION, "model_id": self.model_id, "dim": self.dim,
            "metric": "euclidean", "created": self.created, "updated": self.updated,
            "names": self._people, "shards": self._shards})
        self._remove_unlisted_shards()

    def _write_shard(self, embeddings: np.ndarray, labels: np.ndarray) -> dict:
        from safetensors.numpy import save_file

        generation = 1 + max([int(s["file"][len(SHARD_PREFIX):].split("-")[0])
                              for s in self._shards] + [0])
        name = f"{SHARD_PREFIX}{generation:06d}-{secrets.token_hex(4)}{SHARD_SUFFIX}"
        tensors = {"embeddings": np.ascontiguousarray(embeddings, np.float32),
                   "labels": np.ascontiguousarray(labels, np.int64)}
        meta = {"model_id": self.model_id}
        path = atomic_write(self.path / name, lambda tmp: save_file(tensors, tmp, metadata=meta))
        return {"file": name, "count": int(len(labels)), "sha256": _sha256(path)}

    def _remove_unlisted_shards(self) -> None:
        listed = {s["file"] for s in self._shards}
        for file in self.path.glob(f"{SHARD_PREFIX}*{SHARD_SUFFIX}"):
            if file.name not in listed:
                try:
                    file.unlink()
                except OSError:
                    pass

    def _rewrite(self, embeddings: np.ndarray, labels: np.ndarray, people: list[str]) -> None:
        """Replace everything with one shard (used by remove and compact)."""
        new_shards = [self._write_shard(embeddings, labels)] if len(labels) else []
        old = (self._people, self._shards)
        self._people, self._shards = people, new_shards
        try:
            self._write_index()
        except BaseException:
            self._people, self._shards = old
            raise
        self._set_arrays(embeddings, labels)

    # ------------------------------------------------------------------ people
    def names(self) -> list[str]:
        """Enrolled people, in the order they were first enrolled."""
        return list(self._people)

    def counts(self) -> dict[str, int]:
        """``{name: number of enrolled embeddings}``."""
        counts = np.bincount(self._labels, minlength=len(self._people))
        return {name: int(c) for name, c in zip(self._people, counts)}

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, name) -> bool:
        return name in self._people

    @property
    def num_embeddings(self) -> int:
        return int(len(self._labels))

    def embeddings(self, name: str | None = None) -> np.ndarray:
        """All enrolled embeddings ``(M, D)`` float32 (a copy), or those of ``name``."""
        if name is None:
            return self._embeddings.copy()
        return self._embeddings[self._labels == self._person_index(name)].copy()

    def _person_index(self, name: str) -> int:
        try:
            return self._people.index(name)
        except ValueError:
            shown = ", ".join(repr(n) for n in self._people[:10]) + (" ..." if len(self._people) > 10 else "")
            raise UnknownPerson(f"{name!r} is not enrolled in {str(self.path)!r} "
                                f"(enrolled: {shown or 'nobody'})") from None

    def _as_embeddings(self, embeddings, what: str = "embeddings", dim: int | None = None) -> np.ndarray:
        if isinstance(embeddings, (list, tuple)) and embeddings and all(np.ndim(e) == 1 for e in embeddings):
            embeddings = np.stack([np.asarray(e) for e in embeddings])
        e = np.asarray(embeddings)
        if e.ndim == 1:
            e = e[None, :]
        if e.ndim != 2 or e.shape[0] == 0 or e.dtype.kind not in "fiu":
            raise FaceDatabaseError(f"{what} must be numbers shaped (D,) or (n, D) with n >= 1, "
                                    f"received shape {e.shape} dtype={e.dtype}")
        dim = self.dim if dim is None else dim
        if dim is not None and e.shape[1] != dim:
            raise ModelMismatch(f"{what} have {e.shape[1]} values each, but the database "
                                f"{str(self.path)!r} holds {dim}-d embeddings of model "
                                f"{self.model_id!r}")
        e = e.astype(np.float32)
        if not np.isfinite(e).all():
            raise FaceDatabaseError(f"{what} must be finite, received NaN or infinite values")
        return e

    def enroll(self, name: str, embeddings, model_id: str | None = None) -> int:
        """Add ``embeddings`` ``(D,)`` or ``(n, D)`` (one per photo) for ``name``; a person
        already enrolled gets more photos.  ``model_id`` (optional) is checked against the
        database's.  Saved at once (one new shard).  Returns the person's embedding count."""
        self.enroll_many({name: embeddings}, model_id=model_id)
        return int(np.count_nonzero(self._labels == self._people.index(name)))

    def enroll_many(self, people, model_id: str | None = None) -> None:
        """:meth:`enroll` several people at once, ``{name: embeddings}``: one shard, one
        index write (all or nothing)."""
        if model_id is not None and model_id != self.model_id:
            raise ModelMismatch(f"embeddings of model {model_id!r} cannot be enrolled in the face "
                                f"database {str(self.path)!r} of model {self.model_id!r}")
        names = list(self._people)
        position = {name: i for i, name in enumerate(names)}
        blocks, labels = [], []
        dim = self.dim
        for name, embeddings in dict(people).items():
            name = _check_name(name)
            e = self._as_embeddings(embeddings, f"embeddings of {name!r}", dim)
            dim = e.shape[1]
            if name not in position:
                position[name] = len(names)
                names.append(name)
            blocks.append(e)
            labels.append(np.full(len(e), position[name], np.int64))
        if not blocks:
            raise FaceDatabaseError("enroll_many received no people")
        e, y = np.concatenate(blocks), np.concatenate(labels)
        old = (self._people, self._shards, self.dim)
        try:
            self.dim = int(dim)
            self._shards = self._shards + [self._write_shard(e, y)]
            self._people = names
            self._write_index()
        except BaseException:
            self._people, self._shards, self.dim = old
            raise
        self._set_arrays(np.concatenate([self._embeddings.reshape(-1, self.dim), e]),
                         np.concatenate([self._labels, y]),
                         np.concatenate([self._sq_norms, np.einsum("ij,ij->i", e, e)]))
        if len(self._shards) > MAX_SHARDS:
            self._merge_small_shards()

    def _merge_small_shards(self) -> None:
        """Merge every shard but the first into one (or all, when the first is not the larger
        part), so enrolling one person at a time never rewrites most of a big database."""
        first = self._shards[0]["count"]
        if first < self.num_embeddings - first:
            self.compact()
            return
        rest = slice(first, None)
        merged = self._write_shard(self._embeddings[rest], self._labels[rest])
        old = self._shards
        self._shards = [old[0], merged]
        try:
            self._write_index()
        except BaseException:
            self._shards = old
            raise

    def enroll_images(self, name: str, images, embed=None, batch_size: int = 8) -> int:
        """Enroll ``name`` from images (arrays or paths, whatever ``embed`` takes).  ``embed``
        (default: the constructor's) is either an ``embed(image) -> (D,)`` callable, called on
        each image, or an object with ``embed_images(images, batch_size=...) -> (n, D)`` (a
        :class:`strided.face.FaceModels`), which embeds the photos ``batch_size`` at a time, much
        faster for many photos.  Returns the person's embedding count."""
        embed = embed or self.embed
        batched = callable(getattr(embed, "embed_images", None))
        if embed is None or not (batched or callable(embed)):
            raise FaceDatabaseError("enroll_images needs an embed(image) -> (D,) callable or an object with "
                                    "embed_images(images) (a FaceModels), as embed= here or in "
                                    f"FaceDatabase(...), received {embed!r}")
        if isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]
        images = list(images)
        if not images:
            raise FaceDatabaseError(f"enroll_images({name!r}) received no images")
        if batched:
            vectors = np.asarray(embed.embed_images(images, batch_size=batch_size))
            vectors = vectors.reshape(len(images), -1)
        else:
            vectors = np.stack([np.asarray(embed(image)).reshape(-1) for image in images])
        return self.enroll(name, vectors)

    def remove(self, name: str) -> None:
        """Forget ``name`` and all their embeddings (the rest is rewritten as one shard)."""
        index = self._person_index(name)
        keep = self._labels != index
        labels = self._labels[keep]
        labels = labels - (labels > index)
        people = self._people[:index] + self._people[index + 1:]
        self._rewrite(self._embeddings[keep], labels, people)

    def compact(self) -> None:
        """Rewrite all embeddings as one shard (faster to open after many enrolments)."""
        self._rewrite(self._embeddings, self._labels, list(self._people))

    # ------------------------------------------------------------------ search
    def distances(self, queries) -> np.ndarray:
        """Euclidean distances ``(Q, M)`` from each query to every enrolled embedding (one GEMM;
        float32 rounding, about 1e-6 relative)."""
        q = self._as_embeddings(queries, "queries")
        d2 = self._squared_distances(q, self._embeddings, self._sq_norms)
        return np.sqrt(d2)

    @staticmethod
    def _squared_distances(q: np.ndarray, e: np.ndarray, e_sq: np.ndarray) -> np.ndarray:
        d2 = q @ e.T
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        d2 += e_sq[None, :]
        return np.maximum(d2, 0.0, out=d2)

    def _person_means(self) -> np.ndarray:
        if self._means is None:
            sums = np.zeros((len(self._people), self.dim or 0), np.float64)
            np.add.at(sums, self._labels, self._embeddings)
            counts = np.bincount(self._labels, minlength=len(self._people))
            self._means = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        return self._means

    def identify(self, embeddings, threshold: float = 0.6, strategy: str = "nearest") -> list[Match]:
        """For each face embedding (``(D,)`` or ``(Q, D)``): the matching person or ``"unknown"``.

        ``strategy="nearest"``: the person of the nearest enrolled embedding; ``"mean"``: the
        person with the nearest mean embedding.  A face is known when that Euclidean distance
        is ``<= threshold``.  Returns one :class:`Match` per face (a list, also for one face).
        """
        if strategy not in STRATEGIES:
            raise FaceDatabaseError(f"strategy must be one of {STRATEGIES}, received strategy={strategy!r}")
        threshold = float(threshold)
        if not np.isfinite(threshold) or threshold < 0:
            raise FaceDatabaseError(f"threshold must be a finite distance >= 0, received "
                                    f"threshold={threshold!r}")
        q = self._as_embeddings(embeddings, "queries")
        if not self._people:
            return [Match(UNKNOWN, None, None) for _ in range(len(q))]
        if strategy == "nearest":
            targets, owner = self._embeddings, self._labels
            sq = self._sq_norms
        else:
            targets = self._person_means()
            owner = np.arange(len(self._people))
            sq = np.einsum("ij,ij->i", targets, targets)
        best = self._squared_distances(q, targets, sq).argmin(axis=1)
        exact = np.linalg.norm(q.astype(np.float64) - targets[best].astype(np.float64), axis=1)
        matches = []
        for person, distance in zip(owner[best], exact):
            nearest = self._people[int(person)]
            name = nearest if distance <= threshold else UNKNOWN
            matches.append(Match(name, float(distance), nearest))
        return matches

    def __repr__(self) -> str:
        return (f"FaceDatabase({str(self.path)!r}, model_id={self.model_id!r}, people={len(self)}, "
                f"embeddings={self.num_embeddings}, dim={self.dim})")
