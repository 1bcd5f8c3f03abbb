"""strided.face.detect / embed / distance / verify against face-api itself, end to end.

References: face-api 1.7.15's ``detectAllFaces(img, TinyFaceDetectorOptions({inputSize: 416,
scoreThreshold: 0.5})).withFaceLandmarks([tiny]).withFaceDescriptors()`` in node (TF.js 4 CPU
backend) on the same decoded pixels:

* ``tests/detect/data/faceapi_reference.json`` (astronaut, Grace Hopper, demo sample1/5/6; full
  landmark net), made with the command in ``tests/detect/data/faceapi_make_reference.py``;
* ``tests/face/data/faceapi_landmarks_reference.json`` (astronaut, Grace Hopper, sample1 and the
  astronaut mirrored and resized to 384 x 384; full and tiny landmark nets), made with::

      PYTHONPATH=$PWD/src python tests/face/data/faceapi_make_landmarks_reference.py \\
          --node-modules /work/faceapi/node_modules

Observed: landmarks within 6e-5 px, descriptors within 8e-7 (L2) of face-api's; tested at
2e-3 px and 1e-5 (the issue asks 0.5 px and 1e-3, used when a photo decodes to other pixels).
Tests needing face-api's weights skip when they are not installed; distance and input checks
run everywhere.
"""
import hashlib
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faceapi_helpers as helpers  # noqa: E402

import strided.face as face  # noqa: E402
from strided.errors import ImageError, StridedError  # noqa: E402
from strided.face.api import DEFAULT_THRESHOLD, FaceModels, NoFaceError, default_models, load_image  # noqa: E402

BOX_TOL, LANDMARK_TOL, DESCRIPTOR_TOL = 0.01, 2e-3, 1e-5
LOOSE = (0.5, 0.5, 1e-3)


# ------------------------------------------------------------------------------------ distance (no weights)
def test_distance_matches_torch_and_scipy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=128).astype(np.float32), rng.normal(size=(5, 128)).astype(np.float32)
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    np.testing.assert_allclose(face.distance(a, b), torch.cdist(ta[None], tb)[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(face.distance(a, b, metric="cosine"),
                               1 - torch.nn.functional.cosine_similarity(ta[None], tb).numpy(), rtol=1e-12)
    d = face.distance(a, b[0])
    assert isinstance(d, float) and d == pytest.approx(float(torch.dist(ta, tb[0])), rel=1e-12)
    scipy_distance = pytest.importorskip("scipy.spatial.distance")
    assert face.distance(a, b[1], "cosine") == pytest.approx(scipy_distance.cosine(a, b[1]), rel=1e-9)
    assert face.distance(a, a) == 0.0 and face.distance(a, -a, "cosine") == pytest.approx(2.0)


def test_distance_errors():
    with pytest.raises(StridedError, match="metric must be one of \\('euclidean', 'cosine'\\), received metric='l1'"):
        face.distance(np.ones(3), np.ones(3), metric="l1")
    with pytest.raises(StridedError, match="received shapes \\(3,\\) and \\(4,\\)"):
        face.distance(np.ones(3), np.ones(4))
    with pytest.raises(StridedError, match="all-zero"):
        face.distance(np.zeros(3), np.ones(3), metric="cosine")


def test_load_image_accepts_uint8_floats_and_paths_and_names_bad_input(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    assert load_image(pixels) is pixels
    np.testing.assert_array_equal(load_image(pixels / 255.0), pixels)
    from PIL import Image
    Image.fromarray(pixels).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), pixels)
    with pytest.raises(ImageError, match="RGB image array \\(H, W, 3\\), received ndarray of shape \\(6, 5\\)"):
        load_image(pixels[..., 0])
    with pytest.raises(ImageError, match="dtype int64"):
        load_image(pixels.astype(np.int64))


def test_missing_weights_name_the_install_command(tmp_path, monkeypatch):
    from strided.errors import DatasetUnavailable
    monkeypatch.setenv("STRIDED_FACEAPI_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "")                # no npm: the global npm folder is not searched
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetUnavailable, match="strided models fetch face-api"):
        FaceModels()


# ------------------------------------------------------------------------------------ against face-api
@pytest.fixture(scope="module")
def models(model_dir):
    return default_models()


@pytest.fixture(scope="module")
def tiny_models(model_dir):
    return default_models(tiny_landmarks=True)


def reference_photo(reference_file, name, model_dir):
    ref = helpers.reference(reference_file)["photos"][name]
    image = helpers.photo(name, model_dir)
    if image is None:
        pytest.skip(f"{ref['source']} is not installed next to {model_dir}")
    same = hashlib.sha256(image.tobytes()).hexdigest() == ref["sha256"]
    return ref, image, (BOX_TOL, LANDMARK_TOL, DESCRIPTOR_TOL) if same else LOOSE


def check_faces(faces, expected, tolerances):
    box_tol, landmark_tol, descriptor_tol = tolerances
    assert len(faces) == len(expected) > 0
    for ours, theirs in zip(faces, expected):             # both highest score first
        np.testing.assert_allclose(ours["box"], helpers.xywh_to_xyxy(theirs["box"]), rtol=0, atol=box_tol)
        assert np.abs(np.array(ours["landmarks"]) - theirs["landmarks"]).max() <= landmark_tol
        assert np.linalg.norm(ours["embedding"] - np.array(theirs["descriptor"])) <= descriptor_tol
        assert ours["embedding"].dtype == np.float32 and ours["embedding"].shape == (128,)
        x1, y1, x2, y2 = ours["aligned_box"]
        assert x2 - x1 == y2 - y1 > 0 and all(float(v).is_integer() for v in ours["aligned_box"])


@pytest.mark.parametrize("name", sorted(helpers.reference()["photos"]))
def test_detect_matches_face_api(name, models, model_dir):
    ref, image, tolerances = reference_photo(helpers.DETECT_REFERENCE, name, model_dir)
    check_faces(face.detect(image, embeddings=True), ref["faces"], tolerances)


@pytest.mark.parametrize("name", sorted(helpers.reference(helpers.LANDMARKS_REFERENCE)["photos"]))
def test_detect_with_tiny_landmarks_matches_face_api(name, tiny_models, model_dir):
    ref, image, tolerances = reference_photo(helpers.LANDMARKS_REFERENCE, name, model_dir)
    check_faces(face.detect(image, embeddings=True, models=tiny_models), ref["faces_tiny"], tolerances)


def test_mirrored_rescaled_astronaut_matches_face_api(models, model_dir):
    ref, image, tolerances = reference_photo(helpers.LANDMARKS_REFERENCE, "astronaut_flipped_384", model_dir)
    check_faces(face.detect(image, embeddings=True), ref["faces"], tolerances)


def test_verify_the_astronaut_against_herself_mirrored_and_rescaled_not_grace_hopper(models, model_dir):
    astronaut = helpers.photo("astronaut")
    same = face.verify(astronaut, helpers.photo("astronaut_flipped_384"))
    other = face.verify(astronaut, helpers.photo("grace_hopper"))
    assert same["verified"] is True and other["verified"] is False
    assert set(same) >= {"verified", "distance", "threshold", "faces"} and same["threshold"] == DEFAULT_THRESHOLD == 0.6
    # the distances face-api's own descriptors give (0.235 and 0.667)
    refs = helpers.reference(helpers.LANDMARKS_REFERENCE)["photos"]
    descriptor = {name: np.array(refs[name]["faces"][0]["descriptor"]) for name in refs}
    mirrored = descriptor["astronaut_flipped_384"]
    assert same["distance"] == pytest.approx(np.linalg.norm(descriptor["astronaut"] - mirrored), abs=2e-5)
    assert other["distance"] == pytest.approx(np.linalg.norm(descriptor["astronaut"] - descriptor["grace_hopper"]),
                                              abs=2e-5)
    assert [f["faces_found"] for f in same["faces"]] == [1, 1] and "note" not in same["faces"][0]
    assert len(same["faces"][1]["landmarks"]) == 68
    # the mirrored face is found on the other side of the (384 px) picture (the detector is not exactly
    # mirror-symmetric: 5 px here, for a box 87 px wide)
    assert same["faces"][1]["box"][0] == pytest.approx(384 - same["faces"][0]["box"][2] * 0.75, abs=10)


def test_embed_takes_the_largest_face_and_says_so_in_verify(models, model_dir):
    ref, image, tolerances = reference_photo(helpers.DETECT_REFERENCE, "sample1", model_dir)
    areas = [w * h for (_, _, w, h) in (f["box"] for f in ref["faces"])]
    largest = ref["faces"][int(np.argmax(areas))]
    assert int(np.argmax(areas)) != 0                         # not simply the best score
    assert np.linalg.norm(face.embed(image) - np.array(largest["descriptor"])) <= tolerances[2]
    result = face.verify(image, image)
    assert result["verified"] and result["distance"] == 0.0
    assert result["faces"][0]["faces_found"] == 3 and "the largest was used" in result["faces"][0]["note"]


def test_embed_of_a_given_face_dict_or_box(models):
    image = helpers.photo("astronaut")
    [found] = face.detect(image, embeddings=True)
    np.testing.assert_array_equal(face.embed(image, found), found["embedding"])
    without = {k: v for k, v in found.items() if k != "embedding"}
    np.testing.assert_allclose(face.embed(image, without), found["embedding"], atol=1e-7)
    # a bare box: landmarks are found in it first, so the same descriptor
    np.testing.assert_allclose(face.embed(image, found["box"]), found["embedding"], atol=1e-7)
    np.testing.assert_allclose(face.embed(image, {"box": found["box"]}), found["embedding"], atol=1e-7)
    with pytest.raises(StridedError, match="received a dict with keys \\['score'\\]"):
        face.embed(image, {"score": 1.0})


def test_no_face_is_a_clear_error(models):
    blank = np.full((200, 300, 3), 128, np.uint8)
    assert face.detect(blank) == []
    with pytest.raises(NoFaceError, match="no face found in image \\(shape \\(200, 300\\)"):
        face.embed(blank)
    with pytest.raises(NoFaceError, match="no face found in image 2"):
        face.verify(helpers.photo("astronaut"), blank)
    with pytest.raises(StridedError, match="threshold must be a positive number.*received threshold=-1"):
        face.verify(blank, blank, threshold=-1)


def test_detect_options_and_boxes_only(models):
    image = helpers.photo("astronaut")
    [only_box] = face.detect(image, landmarks=False)
    assert set(only_box) == {"box", "score"}
    assert face.detect(image, score_threshold=0.99) == []
    [small] = face.detect(image, input_size=224)
    assert abs(small["box"][0] - only_box["box"][0]) < 10


def test_models_are_loaded_once_and_can_be_built_explicitly(models, model_dir):
    assert default_models() is models and default_models(model_dir) is default_models(model_dir)
    explicit = FaceModels(model_dir, input_size=320,
                          landmark_net=models.landmark_net, recognition_net=models.recognition_net)
    assert explicit.detector.input_size == 320 and "input_size=320" in repr(explicit)
    assert explicit.embedding_id == models.embedding_id and explicit.embedding_id.startswith("faceapi-dlib-resnet128:")
    image = helpers.photo("grace_hopper")
    assert len(face.detect(image, models=explicit)) == 1


# ------------------------------------------------------------------------------------ batched pipeline
def plain_detect(models, image):
    """The pipeline face by face (landmark net and recognition net at batch 1), as detect was written
    before it was batched: the reference the batched path is held to."""
    faces = []
    for det in models.find_faces(image):
        points, crop_size = models.landmarks(image, det["box"])
        faces.append({"box": det["box"], "landmarks": points,
                      "embedding": models.embed_landmarks(image, points, crop_size)})
    return faces


@pytest.fixture(scope="module")
def unfused(models):
    """The same networks, the recognition net run as loaded (scale layers not folded)."""
    return FaceModels(detector=models.detector, landmark_net=models.landmark_net,
                      recognition_net=models.recognition_net, fuse=False)


def test_batched_detect_many_equals_the_face_by_face_unfused_path(models, unfused, model_dir):
    names = ["astronaut", "sample1", "grace_hopper", "astronaut_flipped_384"]
    photos = [helpers.photo(name, model_dir) for name in names]
    photos = [p for p in photos if p is not None]
    for batch_size in (1, 3):
        results = models.detect_many(photos, embeddings=True, batch_size=batch_size)
        assert len(results) == len(photos)
        for image, faces in zip(photos, results):
            expected = plain_detect(unfused, image)
            assert len(faces) == len(expected) > 0
            for ours, theirs in zip(faces, expected):
                assert ours["box"] == theirs["box"]
                assert np.abs(np.array(ours["landmarks"]) - theirs["landmarks"]).max() <= 1e-3
                assert np.linalg.norm(ours["embedding"] - theirs["embedding"]) <= 1e-5
    assert sum(len(f) for f in results) >= len(photos) + 2      # sample1's three faces went through together


@pytest.mark.parametrize("name", sorted(helpers.reference()["photos"]))
def test_detect_many_matches_face_api(name, models, model_dir):
    ref, image, tolerances = reference_photo(helpers.DETECT_REFERENCE, name, model_dir)
    [faces, again] = models.detect_many([image, image], embeddings=True, batch_size=2)
    check_faces(faces, ref["faces"], tolerances)
    check_faces(again, ref["faces"], tolerances)


def test_fused_and_unfused_recognition_agree_and_share_the_model_id(models, unfused):
    crop = helpers.photo("astronaut")[70:190, 160:280]
    assert np.linalg.norm(models.embed_crop(crop) - unfused.embed_crop(crop)) <= 1e-5
    assert models.embedding_id == unfused.embedding_id
    assert unfused.fast_recognition_net is unfused.recognition_net is models.recognition_net
    assert models.fast_recognition_net is not models.recognition_net
    np.testing.assert_allclose(models.embed_crops([crop, crop[::-1]]),
                               np.stack([unfused.embed_crop(crop), unfused.embed_crop(crop[::-1])]), atol=1e-5)
    assert models.embed_crops([]).shape == (0, 128)


def test_embed_images_takes_each_photos_largest_face(models, model_dir, tmp_path):
    astronaut, grace = helpers.photo("astronaut"), helpers.photo("grace_hopper")
    from PIL import Image
    Image.fromarray(grace).save(tmp_path / "grace.png")
    vectors, chosen, found = models.embed_images([astronaut, tmp_path / "grace.png", astronaut], batch_size=2,
                                                 return_faces=True)
    assert vectors.shape == (3, 128) and vectors.dtype == np.float32 and found == [1, 1, 1]
    np.testing.assert_allclose(vectors[0], face.embed(astronaut), atol=1e-5)
    np.testing.assert_allclose(vectors[1], face.embed(grace), atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)      # batch position: rounding only
    np.testing.assert_allclose(face.embed_images([astronaut]), vectors[:1], atol=1e-6)
    sample = helpers.photo("sample1", model_dir)
    if sample is not None:      # three faces: the largest, as embed() chooses it
        np.testing.assert_allclose(models.embed_images(sample), face.embed(sample)[None], atol=1e-5)
    # a smaller detector input (enrolment of portraits): the same person, a nearby descriptor
    small = models.embed_images([astronaut], input_size=224)
    assert 0 < np.linalg.norm(small[0] - vectors[0]) < 0.2


def test_embed_images_errors_name_the_photo(models, tmp_path):
    blank = np.full((120, 90, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face found in image 1 \\(detector input 416"):
        models.embed_images([helpers.photo("astronaut"), blank])
    from PIL import Image
    Image.fromarray(blank).save(tmp_path / "blank.png")
    with pytest.raises(NoFaceError, match="image 0 \\(.*blank.png\\)"):
        models.embed_images(tmp_path / "blank.png")
    for bad in (0, 2.5, True):
        with pytest.raises(StridedError, match=f"batch_size must be a positive integer.*received batch_size={bad!r}"):
            models.embed_images([blank], batch_size=bad)
    assert models.embed_images([]).shape == (0, 128) and models.detect_many([]) == []


def test_largest_only_runs_the_nets_on_the_largest_face_alone(models, model_dir):
    sample = helpers.photo("sample1", model_dir)
    if sample is None:
        pytest.skip("face-api's demo photo sample1 is not installed")
    every = models.detect(sample, embeddings=True)
    [[largest], [alone]] = models.detect_many([sample, helpers.photo("astronaut")], embeddings=True,
                                              largest_only=True)
    expected = max(every, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    assert largest["faces_found"] == len(every) == 3 and alone["faces_found"] == 1
    assert largest["box"] == expected["box"] and expected is not every[0]
    np.testing.assert_allclose(largest["landmarks"], expected["landmarks"], atol=1e-3)
    np.testing.assert_allclose(largest["embedding"], expected["embedding"], atol=1e-5)
