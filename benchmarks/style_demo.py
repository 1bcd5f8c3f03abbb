"""The README's neural style transfer pictures: content, style and result side by side, timed.

    PYTHONPATH=src python benchmarks/style_demo.py                 # every picture (minutes each on 2 cores)
    PYTHONPATH=src python benchmarks/style_demo.py --only cat_scream --size 256 --steps 200

Content images come from scikit-image (astronaut, chelsea, coffee) and matplotlib (grace_hopper.jpg),
style images from Debian's darknet package (/usr/share/darknet/data/scream.jpg) and scikit-image's
textures (brick, grass, gravel): nothing is downloaded.  Each picture is written as
docs/style/<name>.jpg (content | style | result, 1 row) with the settings and time on stdout.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.import_strided()
import numpy as np  # noqa: E402

SCREAM = "/usr/share/darknet/data/scream.jpg"


def content_image(name):
    import skimage.data
    if name == "grace_hopper":
        from matplotlib import cbook
        from strided.data.image import read_image
        return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return getattr(skimage.data, name)()


def style_image(name):
    import skimage.data
    if name == "scream":
        from strided.data.image import read_image
        return read_image(SCREAM)
    image = getattr(skimage.data, name)()
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


# name: (content, style, backbone, options)
DEMOS = {
    "cat_scream": ("chelsea", "scream", "vgg16_bn_craft", {}),
    "cat_scream_lite0": ("chelsea", "scream", "efficientnet_lite0", {}),
    "cat_scream_course_weights": ("chelsea", "scream", "vgg16_bn_craft", {"style_weight": 40.0}),
    "hopper_scream_colors": ("grace_hopper", "scream", "vgg16_bn_craft", {"preserve_color": True}),
    "astronaut_gravel": ("astronaut", "gravel", "vgg16_bn_craft", {}),
    "coffee_brick": ("coffee", "brick", "vgg16_bn_craft", {}),
}


def side_by_side(content, style, result, height):
    from PIL import Image
    tiles = []
    for image in (content, style, result):
        im = Image.fromarray(image)
        tiles.append(im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS))
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 8
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(DEMOS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(common.REPO_ROOT, "docs", "style"))
    args = parser.parse_args()
    from strided.style.backbones import get_backbone
    from strided.style.optimize import stylize

    os.makedirs(args.out, exist_ok=True)
    backbones = {}
    for name in args.only or DEMOS:
        content_name, style_name, backbone_name, options = DEMOS[name]
        if backbone_name not in backbones:
            backbones[backbone_name] = get_backbone(backbone_name)
        content, style = content_image(content_name), style_image(style_name)
        t0 = time.perf_counter()
        r = stylize(content, [style], backbone=backbones[backbone_name], size=args.size, steps=args.steps,
                    **options)
        seconds = time.perf_counter() - t0
        picture = side_by_side(content, style, r.image, r.image.shape[0])
        path = os.path.join(args.out, f"{name}.jpg")
        picture.save(path, quality=88)
        s = r.settings
        print(f"{name}: {content_name} + {style_name}, {backbone_name}, {s['size'][0]}x{s['size'][1]}, "
              f"{s['steps']} {s['optimizer']} steps ({r.evaluations} evaluations), content_weight "
              f"{s['content_weight']:g}, style_weight {s['style_weight']:g}, init {s['init']}"
              f"{', preserve_color' if s['preserve_color'] else ''}: {seconds:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
