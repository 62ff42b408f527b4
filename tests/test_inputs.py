"""The input path that needs no TensorFlow (training/inputs.py: ``ArrayBatches``, JAX's path)."""

import keras
import numpy as np

from facesketch.data.dataset import to_float
from facesketch.training.inputs import array_batches, jitter_and_flip_np
from conftest import make_pairs


def _batches(ds):
    return [ds[i] for i in range(len(ds))]


def test_batches_are_the_pairs_scaled_in_a_seeded_order_that_changes_every_epoch():
    photos, sketches = make_pairs(10, 32)
    ds = array_batches(photos, sketches, 4, shuffle_seed=3)
    assert len(ds) == 3 and [len(x) for x, _ in _batches(ds)] == [4, 4, 2]
    first = _batches(ds)
    x = np.concatenate([b[0] for b in first])
    y = np.concatenate([b[1] for b in first])
    order = ds.order
    np.testing.assert_array_equal(x, to_float(photos[order]))  # the same float32 division as dataset.to_float
    np.testing.assert_array_equal(y, to_float(sketches[order]))
    assert sorted(order) == list(range(10)) and list(order) != list(range(10))
    ds.on_epoch_end()
    assert list(ds.order) != list(order)
    again = array_batches(photos, sketches, 4, shuffle_seed=3)
    np.testing.assert_array_equal(again.order, order)  # seeded
    assert list(array_batches(photos, sketches, 4).order) == list(range(10))  # validation: in order
    assert len(array_batches(photos, sketches, 4, replicas=2)) == 2  # replicas: the partial batch dropped


def test_jitter_and_flip_move_input_and_target_alike():
    photos, _ = make_pairs(2, 32)
    x = to_float(photos)
    ds = array_batches(photos, photos, 2, shuffle_seed=0, augment={"jitter": 0.2, "flip": True})
    for epoch in range(3):
        bx, by = ds[0]
        np.testing.assert_array_equal(bx, by)
        assert bx.shape == x.shape and bx.dtype == np.float32
        ds.on_epoch_end()
    rng = np.random.default_rng(0)
    flipped = [jitter_and_flip_np(x[0], x[0], rng, 0.0, True)[0] for _ in range(20)]
    assert any(np.array_equal(f, x[0][:, ::-1]) for f in flipped) and any(np.array_equal(f, x[0]) for f in flipped)


def test_fit_starts_a_new_order_every_epoch():
    photos, sketches = make_pairs(8, 32)
    ds = array_batches(photos, sketches, 4, shuffle_seed=1)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(3, 1)])
    model.compile(optimizer="sgd", loss="mse")
    orders = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: orders.append(tuple(ds.order)))
    model.fit(ds, steps_per_epoch=len(ds), epochs=3, verbose=0, callbacks=[seen])
    assert len(set(orders)) == 3 and all(sorted(o) == list(range(8)) for o in orders)


def test_the_processes_of_a_jax_cluster_feed_halves_of_the_one_process_batch():
    """process=(p, P): every process draws the same order and augmentation and feeds its own part;
    the parts side by side are exactly the batch one process would feed."""
    import numpy as np

    from facesketch.training.inputs import array_batches

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), np.uint8)
    y = rng.integers(0, 256, (12, 8, 8, 3), np.uint8)
    kw = dict(shuffle_seed=3, replicas=2, augment={"jitter": 0.25, "flip": True})
    whole = array_batches(x, y, 4, **kw)
    parts = [array_batches(x, y, 4, process=(p, 2), **kw) for p in (0, 1)]
    assert len(whole) == len(parts[0]) == 3
    for epoch in range(2):
        for i in range(len(whole)):
            wx, wy = whole[i]
            (ax, ay), (bx, by) = parts[0][i], parts[1][i]
            assert ax.shape[0] == bx.shape[0] == 2
            np.testing.assert_array_equal(np.concatenate([ax, bx]), wx)
            np.testing.assert_array_equal(np.concatenate([ay, by]), wy)
        for d in (whole, *parts):
            d.on_epoch_end()
