"""functional.parallel: work split over threads, and the size below which it is not split."""
import threading

import numpy as np
import pytest

from strided import functional as F
from strided.functional import parallel
from strided.tensor import Tensor


@pytest.fixture
def two_threads():
    threads, threshold = parallel.get_num_threads(), parallel.get_parallel_threshold()
    parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(threads)
    parallel.set_parallel_threshold(threshold)


def chunks_and_threads(n, work_bytes):
    seen = []

    def work(lo, hi):
        seen.append((lo, hi, threading.get_ident()))

    parallel.parallel_for(n, work, work_bytes=work_bytes)
    return sorted(seen)


def test_small_work_stays_on_the_calling_thread(two_threads):
    parallel.set_parallel_threshold(1 << 20)
    seen = chunks_and_threads(10, work_bytes=1000)
    assert seen == [(0, 10, threading.get_ident())]


def test_large_work_is_split_over_the_threads(two_threads):
    parallel.set_parallel_threshold(1 << 20)
    seen = chunks_and_threads(10, work_bytes=1 << 21)
    assert [(lo, hi) for lo, hi, _ in seen] == [(0, 5), (5, 10)]
    assert len({ident for _, _, ident in seen}) == 2
    # no size given: split as before
    assert len(chunks_and_threads(10, work_bytes=None)) == 2


def test_threshold_must_be_non_negative():
    with pytest.raises(ValueError, match="received -1"):
        parallel.set_parallel_threshold(-1)


def run_ops(seed=0):
    """Forward and backward of the ops whose loops are split over threads."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((6, 12, 12, 8)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 3, 8, 5)), requires_grad=True)
    wd = Tensor(rng.standard_normal((3, 3, 1, 8)), requires_grad=True)
    gamma = Tensor(rng.standard_normal(8) + 1.0, requires_grad=True)
    beta = Tensor(rng.standard_normal(8), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    d = F.conv2d(x, wd, padding=1, groups=8)
    p = F.max_pool2d(d, 3, stride=2)
    a = F.avg_pool2d(d, 2)
    b = F.batch_norm(x, gamma=gamma, beta=beta, training=True)
    loss = (y * y).sum() + (p * p).sum() + (a * a).sum() + (b * b * b).sum()
    loss.backward()
    return [t.data.copy() for t in (y, d, p, a, b)] + [t.grad.copy() for t in (x, w, wd, gamma, beta)]


def test_split_and_unsplit_runs_give_the_same_numbers(two_threads):
    parallel.set_parallel_threshold(0)           # every loop split over 2 threads
    split = run_ops()
    parallel.set_parallel_threshold(1 << 40)     # every loop on one thread
    whole = run_ops()
    for s, w in zip(split, whole):
        np.testing.assert_allclose(s, w, rtol=1e-12, atol=1e-12)


def test_blockwise_covers_every_element_once_in_blocks_over_threads(two_threads):
    parallel.set_parallel_threshold(0)
    x = np.arange(100_003.0)
    out = np.zeros_like(x)
    sizes, threads = [], set()

    def fn(xb, ob):
        sizes.append(xb.size)
        threads.add(threading.get_ident())
        ob += xb + 1
    parallel.blockwise(fn, x, out, budget=8 * 1000)
    np.testing.assert_array_equal(out, x + 1)          # each element written exactly once
    assert sum(sizes) == x.size and max(sizes) <= 1000 and len(threads) == 2


def test_blockwise_hands_non_contiguous_arrays_over_whole():
    x = np.arange(24.0).reshape(4, 6)[:, ::2]
    out = np.zeros_like(x)
    calls = []
    parallel.blockwise(lambda a, b: calls.append(a.shape) or np.add(a, 1, out=b), x, out, budget=8)
    assert calls == [(4, 3)] and np.array_equal(out, x + 1)


@pytest.mark.parametrize("slope", [0.1, 0.0, 1.5, -0.3])
def test_leaky_relu_and_relu_over_many_blocks_and_threads(two_threads, slope):
    """Arrays of many cache blocks, split over 2 threads: the formula, for every element."""
    parallel.set_parallel_threshold(0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64, 64, 16))
    x[0, 0, 0, :4] = 0.0                                  # exact zeros: gradient slope (as torch)
    gy = rng.standard_normal(x.shape)
    t = Tensor(x, requires_grad=True)
    y = F.leaky_relu(t, slope)
    y.backward(gy)
    np.testing.assert_array_equal(y.data, np.where(x > 0, x, slope * x))
    np.testing.assert_array_equal(t.grad, np.where(x > 0, gy, slope * gy))
    r = Tensor(x, requires_grad=True)
    F.relu(r).backward(gy)
    np.testing.assert_array_equal(r.grad, np.where(x > 0, gy, 0.0))
