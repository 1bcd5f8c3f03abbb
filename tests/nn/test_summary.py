"""model.summary(): LeNet-5's course numbers, output shapes, trainable split."""
import re

import numpy as np

from strided import nn


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


LENET_ROWS = [
    ("0", "Conv2d", "(1, 28, 28, 6)", "156"),
    ("1", "ReLU", "(1, 28, 28, 6)", "0"),
    ("2", "MaxPool2d", "(1, 14, 14, 6)", "0"),
    ("3", "Conv2d", "(1, 10, 10, 16)", "2,416"),
    ("4", "ReLU", "(1, 10, 10, 16)", "0"),
    ("5", "MaxPool2d", "(1, 5, 5, 16)", "0"),
    ("6", "Flatten", "(1, 400)", "0"),
    ("7", "Linear", "(1, 120)", "48,120"),
    ("8", "ReLU", "(1, 120)", "0"),
    ("9", "Linear", "(1, 84)", "10,164"),
    ("10", "ReLU", "(1, 84)", "0"),
    ("11", "Linear", "(1, 10)", "850"),
]


def rows(text):
    """Table rows as tuples of cells (cells are separated by two or more spaces)."""
    out = []
    for line in text.splitlines():
        cells = tuple(re.split(r"\s{2,}", line.strip()))
        if len(cells) == 4 and cells[0] != "Layer":
            out.append(cells)
    return out


def totals(text):
    found = {}
    for key in ("Total", "Trainable", "Non-trainable"):
        m = re.search(rf"^{key} params: ([\d,]+)$", text, re.M)
        assert m, f"no '{key} params' line in\n{text}"
        found[key] = int(m.group(1).replace(",", ""))
    return found


def test_lenet5_summary():
    printed = []
    text = lenet5().summary((1, 32, 32, 1), print_fn=printed.append)
    assert printed == [text]
    assert "Total params: 61,706" in text
    assert totals(text) == {"Total": 61706, "Trainable": 61706, "Non-trainable": 0}
    assert rows(text) == LENET_ROWS


def test_summary_after_freezing_first_conv():
    model = lenet5()
    model.freeze("0")
    text = model.summary((1, 32, 32, 1), print_fn=None)
    assert totals(text) == {"Total": 61706, "Trainable": 61550, "Non-trainable": 156}
    assert "Trainable params: 61,550" in text and "Non-trainable params: 156" in text


def test_course_example_280_parameters():
    conv = nn.Conv2d(3, 10, 3)
    assert conv.num_parameters() == 280  # 10 filters of 3*3*3 weights + 10 biases
    text = nn.Sequential(conv).summary((1, 6, 6, 3), print_fn=None)
    assert rows(text) == [("0", "Conv2d", "(1, 4, 4, 10)", "280")]
    assert totals(text)["Total"] == 280


def test_summary_builds_lazy_layers_and_leaves_state_alone():
    model = nn.Sequential(nn.Conv2d(None, 8, 3, padding="same"), nn.BatchNorm2d(), nn.ReLU(),
                          nn.GlobalAvgPool2d(), nn.Linear(None, 4))
    text = model.summary((2, 16, 16, 3), print_fn=None)
    assert rows(text) == [
        ("0", "Conv2d", "(2, 16, 16, 8)", "224"),
        ("1", "BatchNorm2d", "(2, 16, 16, 8)", "16"),  # gamma, beta; running statistics are buffers
        ("2", "ReLU", "(2, 16, 16, 8)", "0"),
        ("3", "GlobalAvgPool2d", "(2, 8)", "0"),
        ("4", "Linear", "(2, 4)", "36"),
    ]
    assert totals(text) == {"Total": 276, "Trainable": 276, "Non-trainable": 0}
    bn = model[1]
    np.testing.assert_array_equal(bn.running_mean, np.zeros(8))
    np.testing.assert_array_equal(bn.running_var, np.ones(8))
    assert all(m.training for m in model.modules())
    # forward was restored after the recording pass
    assert "forward" not in model[0].__dict__


def test_summary_without_input_shape_counts_parameters():
    text = lenet5().summary(print_fn=None)
    assert totals(text)["Total"] == 61706
    table = [tuple(re.split(r"\s{2,}", line.strip())) for line in text.splitlines()
             if re.match(r"^\d+\s", line)]
    assert table == [(a, b, d) for a, b, _, d in LENET_ROWS]  # no output-shape column values


def test_summary_restores_mixed_modes_and_leaves_no_hooks():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten(), nn.Linear(None, 2))
    model.train()
    model[1].eval()
    before = [m.training for m in model.modules()]
    text = model.summary((1, 6, 6, 1), print_fn=None)
    assert ("4", "Linear", "(1, 2)", "66") in rows(text)              # built lazily: 4*4*2 inputs * 2 + 2
    assert [m.training for m in model.modules()] == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    np.testing.assert_array_equal(model[1].running_mean, 0)          # eval mode inside: stats untouched
