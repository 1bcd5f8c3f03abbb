"""Learning-rate schedules against torch.optim.lr_scheduler, and state round trips."""
import math

import numpy as np
import pytest

from strided import nn, optim

torch = pytest.importorskip("torch")
LR = torch.optim.lr_scheduler


def sd_opt(lr):
    return optim.SGD([nn.Parameter(np.zeros(2))], lr=lr)


def torch_opt(lr):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], lr=lr)


def sd_sequence(make, lr, n):
    opt = sd_opt(lr)
    sched = make(opt)
    out = [opt.lr]
    for _ in range(n - 1):
        returned = sched.step()
        assert returned == opt.lr
        out.append(opt.lr)
    return np.array(out)


def torch_sequence(make, lr, n):
    opt = torch_opt(lr)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n - 1):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


def test_step_lr_matches_torch():
    ours = sd_sequence(lambda o: optim.StepLR(o, step_size=3, gamma=0.5), 0.1, 13)
    theirs = torch_sequence(lambda o: LR.StepLR(o, step_size=3, gamma=0.5), 0.1, 13)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    np.testing.assert_allclose(ours[[0, 2, 3, 6, 12]], [0.1, 0.1, 0.05, 0.025, 0.00625], rtol=1e-13)


@pytest.mark.parametrize("total, min_lr", [(10, 0.0), (10, 1e-3), (7, 0.02)])
def test_cosine_lr_matches_torch_cosine_annealing(total, min_lr):
    ours = sd_sequence(lambda o: optim.CosineLR(o, total_steps=total, min_lr=min_lr), 0.1, total + 1)
    theirs = torch_sequence(lambda o: LR.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), 0.1, total + 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
    assert ours[0] == 0.1 and ours[-1] == pytest.approx(min_lr, abs=1e-15)
    assert ours[total // 2] == pytest.approx(min_lr + (0.1 - min_lr) * (1 + math.cos(math.pi * (total // 2) / total))
                                             / 2, rel=1e-12)


# pct_start * total_steps is a whole number here: torch and strided then put the peak on the same step.
ONE_CYCLE = [(100, 0.3, 25.0, 1e4), (10, 0.3, 25.0, 1e4), (20, 0.25, 10.0, 100.0), (50, 0.1, 5.0, 1e3),
             (12, 0.5, 4.0, 10.0)]


@pytest.mark.parametrize("total, pct, div, final_div", ONE_CYCLE)
def test_one_cycle_matches_torch(total, pct, div, final_div):
    max_lr = 0.4
    ours = sd_sequence(lambda o: optim.OneCycleLR(o, total, max_lr=max_lr, pct_start=pct, div_factor=div,
                                                  final_div_factor=final_div), 0.01, total)
    theirs = torch_sequence(lambda o: LR.OneCycleLR(o, max_lr=max_lr, total_steps=total, pct_start=pct,
                                                    div_factor=div, final_div_factor=final_div,
                                                    anneal_strategy="cos", three_phase=False,
                                                    cycle_momentum=False), 0.01, total)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert ours[0] == pytest.approx(max_lr / div, rel=1e-14)
    assert ours.max() == pytest.approx(max_lr, rel=1e-14)
    assert ours[-1] == pytest.approx(max_lr / div / final_div, rel=1e-12)


def test_one_cycle_rounds_the_warm_up_to_a_whole_step():
    """By design strided ends the warm-up on step floor(pct_start * (total - 1)) (at least 1), so the
    peak max_lr is always reached on a step; torch ends it at the fractional step pct_start * total - 1.
    With total=15, pct_start=0.3: strided peaks at step 4, torch's phase ends at step 3.5 and its lr
    never equals max_lr (the two sequences differ by up to ~18% around the peak)."""
    ours = sd_sequence(lambda o: optim.OneCycleLR(o, 15, max_lr=1.0, pct_start=0.3), 0.1, 15)
    assert int(np.argmax(ours)) == 4 and ours[4] == 1.0
    assert np.all(np.diff(ours[:5]) > 0) and np.all(np.diff(ours[4:]) < 0)
    theirs = torch_sequence(lambda o: LR.OneCycleLR(o, max_lr=1.0, total_steps=15, pct_start=0.3,
                                                    cycle_momentum=False), 0.1, 15)
    assert theirs.max() < 1.0
    np.testing.assert_allclose([ours[0], ours[-1]], [theirs[0], theirs[-1]], rtol=1e-12)


def test_one_cycle_default_max_lr_is_the_optimizer_lr():
    opt = sd_opt(0.3)
    optim.OneCycleLR(opt, 10)
    assert opt.lr == pytest.approx(0.3 / 25)


def test_schedule_drives_the_update():
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=1, gamma=0.1)
    for expected in (1.0, 0.1, 0.01):
        p.grad = np.ones(1)
        before = p.data.copy()
        opt.step()
        np.testing.assert_allclose(before - p.data, [expected], rtol=1e-12)
        sched.step()


@pytest.mark.parametrize("make", [lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
                                  lambda o: optim.CosineLR(o, total_steps=9, min_lr=1e-3),
                                  lambda o: optim.OneCycleLR(o, 10, max_lr=0.5)],
                         ids=["step", "cosine", "one-cycle"])
def test_schedule_state_dict_round_trip(make):
    opt_a = sd_opt(0.1)
    a = make(opt_a)
    for _ in range(4):
        a.step()
    state = a.state_dict()
    opt_b = sd_opt(0.1)
    b = make(opt_b)
    assert opt_b.lr != opt_a.lr
    b.load_state_dict(state)
    assert opt_b.lr == opt_a.lr
    for _ in range(4):
        assert b.step() == a.step()
    # through a saved optimizer too: the lr lives in the optimizer state
    opt_c = sd_opt(0.1)
    opt_c.load_state_dict(opt_a.state_dict())
    assert opt_c.lr == opt_a.lr


@pytest.mark.parametrize("make, pattern", [
    (lambda o: optim.StepLR(o, step_size=0), r"step_size=0"),
    (lambda o: optim.CosineLR(o, total_steps=0), r"total_steps=0"),
    (lambda o: optim.OneCycleLR(o, 1), r"total_steps=1"),
])
def test_schedule_validation(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make(sd_opt(0.1))
