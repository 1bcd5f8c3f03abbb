"""strided.style.stylize on tiny images with a random-weight VGG: both optimisers lower the cost, seeding,
several styles, preserve_color keeps the content's chroma, style features computed once, memory steady."""
import gc

import numpy as np
import pytest

import strided as sd
from strided.style import optimize
from strided.style.costs import STYLE_LAYERS
from strided.style.features import VGGFeatures

RNG = np.random.default_rng(0)
CONTENT = (RNG.uniform(0, 1, (20, 24, 3)) * 255).astype(np.uint8)
STYLE = np.tile(np.array([[[250, 30, 30]], [[20, 20, 240]]], dtype=np.uint8), (8, 24, 1))   # red/blue stripes, 16x24
LAYERS = dict(content_layers=["relu2_2"], style_layers=[("relu1_1", 0.5), ("relu2_1", 0.5)])


class Counting(VGGFeatures):
    default_content_layers = [("relu2_2", 1.0)]
    default_style_layers = STYLE_LAYERS

    def __init__(self):
        super().__init__(16, num_convs=4)
        self.calls = 0

    def taps(self, x, names):
        self.calls += 1
        return super().taps(x, names)


@pytest.fixture(scope="module")
def backbone():
    return Counting()


@pytest.mark.parametrize("opt", ["lbfgs", "adam"])
def test_optimizers_lower_the_cost(backbone, opt):
    r = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=6, optimizer=opt, lr=0.05,
                         init="noise", style_weight=1e3, **LAYERS)
    assert r.image.shape == (20, 24, 3) and r.image.dtype == np.uint8
    assert r.history[-1]["total"] < 0.7 * r.history[0]["total"], (r.history[0], r.history[-1])
    assert set(r.history[0]) == {"step", "content", "style", "tv", "total"}


def test_seeded_and_style_features_computed_once(backbone):
    backbone.calls = 0
    a = optimize.stylize(CONTENT, [STYLE, CONTENT], style_blend=[1, 0], backbone=backbone, size=None, steps=3,
                         optimizer="adam", seed=3, **LAYERS)
    assert backbone.calls == 1 + 2 + a.evaluations          # content, two styles, then one per step
    b = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=3, optimizer="adam", seed=3,
                         **LAYERS)
    np.testing.assert_array_equal(a.image, b.image)            # blend [1, 0] is the first style alone
    c = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=3, optimizer="adam", seed=4,
                         **LAYERS)
    assert not np.array_equal(a.image, c.image)


def test_blend_mixes_style_targets(backbone):
    """With two styles blended 1:3 the style target of a layer is 0.25 G(s1) + 0.75 G(s2) (normalised Grams)."""
    from strided.data.image import to_float
    from strided.style.costs import gram_style_cost, normalized_gram

    other = STYLE[..., ::-1].copy()
    r = optimize.stylize(CONTENT, [STYLE, other], style_blend=[1, 3], backbone=backbone, size=None, steps=0,
                         init="content", **LAYERS)
    assert r.settings["style_blend"] == [0.25, 0.75]
    names = ["relu1_1", "relu2_1"]
    with sd.no_grad():
        t1, t2, tc = (backbone.taps(to_float(im)[None], names) for im in (STYLE, other, CONTENT))
        expected = sum(0.5 * gram_style_cost(0.25 * normalized_gram(t1[n]).data + 0.75 * normalized_gram(t2[n]).data,
                                             tc[n]).item() for n in names)
    assert r.history[0]["style"] == pytest.approx(expected, rel=1e-5)


def test_preserve_color_keeps_content_chroma(backbone):
    r = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=4, optimizer="adam", lr=0.1,
                         preserve_color=True, style_weight=1e3, **LAYERS)
    plain = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=4, optimizer="adam", lr=0.1,
                             style_weight=1e3, **LAYERS)
    content_iq = optimize.rgb_to_yiq(CONTENT / 255.0)[..., 1:]
    iq = optimize.rgb_to_yiq(r.image / 255.0)[..., 1:]
    inside = np.all((r.image > 1) & (r.image < 254), axis=-1)    # clipping to [0, 1] can move chroma
    assert inside.mean() > 0.5
    assert np.abs(iq - content_iq)[inside].max() < 0.01
    y = optimize.rgb_to_yiq(r.image / 255.0)[..., 0]
    y_plain = optimize.rgb_to_yiq(plain.image / 255.0)[..., 0]
    assert np.abs(y - y_plain)[inside].max() < 0.02             # the luminance is the stylised one
    assert np.abs(optimize.rgb_to_yiq(plain.image / 255.0)[..., 1:] - content_iq).max() > 0.05


def test_memory_steady_across_steps(backbone):
    live = []

    def count(step, record, pixels):
        gc.collect()
        live.append(sum(issubclass(type(o), sd.Tensor) for o in gc.get_objects()))   # type(): no __class__ lookups

    optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=6, optimizer="adam", callback=count,
                     **LAYERS)
    assert live[-1] == live[1], live
    live.clear()
    optimize.stylize(CONTENT, STYLE, backbone=backbone, size=None, steps=4, optimizer="lbfgs", callback=count,
                     **LAYERS)
    assert len(set(live)) == 1, live


def test_frames_gif_size_and_style_scale(backbone, tmp_path):
    r = optimize.stylize(CONTENT, STYLE, backbone=backbone, size=16, steps=4, optimizer="adam", frame_every=2,
                         style_scale=0.5, **LAYERS)
    assert r.image.shape == (13, 16, 3)
    assert len(r.frames) == 3 and all(f.shape == (13, 16, 3) for f in r.frames)   # start, step 2, result
    np.testing.assert_array_equal(r.frames[-1], r.image)
    optimize.save_gif(r.frames, tmp_path / "p.gif")
    from PIL import Image
    with Image.open(tmp_path / "p.gif") as im:
        assert im.n_frames == 3 and im.size == (16, 13)


def test_bad_arguments(backbone):
    with pytest.raises(KeyError, match="unknown layer 'relu9_1'"):
        optimize.stylize(CONTENT, STYLE, backbone=backbone, steps=1, style_layers=["relu9_1"])
    with pytest.raises(ValueError, match="optimizer=.sgd."):
        optimize.stylize(CONTENT, STYLE, backbone=backbone, optimizer="sgd")
    with pytest.raises(ValueError, match="init=.zeros."):
        optimize.stylize(CONTENT, STYLE, backbone=backbone, init="zeros")
    with pytest.raises(ValueError, match="style_blend"):
        optimize.stylize(CONTENT, [STYLE, STYLE], style_blend=[1], backbone=backbone)
