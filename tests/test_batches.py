"""Batch sources: augmentation as a pure function of (seed, epoch, sample), per-batch frozen
outputs equal to outputs computed over the whole split, each model with its own mean/std."""
import dataclasses

import torch

from benchmark.batches import AugmentedSplit, CachedBatches, Frozen, OnlineBatches, epoch_order
from benchmark.data import Dataset
from benchmark.gpu import Runtime
from benchmark.imagefolder import augmentation
from benchmark.loading import load_model


def _dataset(n=40, channels=3, size=8, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 10
    return Dataset("synthetic", 10, x, y, x, y, torch.arange(n), torch.arange(n))


def test_epoch_order_is_shuffled_full_batches_per_seed_and_epoch():
    batches = epoch_order(10, 4, seed=3, epoch=1)
    assert [len(b) for b in batches] == [4, 4]                # the 2-sample tail is dropped
    assert len(set(torch.cat(batches).tolist())) == 8
    assert all(torch.equal(a, b) for a, b in zip(batches, epoch_order(10, 4, 3, 1)))
    assert not torch.equal(torch.cat(batches), torch.cat(epoch_order(10, 4, 3, 2)))


def test_augmentation_depends_on_seed_epoch_and_sample_only():
    data = _dataset()
    split = AugmentedSplit(data.train_x, seed=5, augment=augmentation())
    first, _ = split[0, 7]
    torch.manual_seed(123)                        # the caller's random state plays no part ...
    again, sample = split[0, 7]
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))      # ... and is left as it was
    assert sample == 7 and torch.equal(first, again) and first.dtype == torch.uint8
    # another epoch or seed draws other augmentations for some samples
    assert any(not torch.equal(split[0, j][0], split[1, j][0]) for j in range(10))
    other = AugmentedSplit(data.train_x, seed=6, augment=augmentation())
    assert any(not torch.equal(split[0, j][0], other[0, j][0]) for j in range(10))


def _online(tiny_zoo, cache, data, workers=0, augment=None, teacher_entry=None):
    student, trained = tiny_zoo.get("resnet_tiny"), tiny_zoo.get("efficientnet_tiny")
    teacher = teacher_entry or trained
    frozen = {"teacher": Frozen(load_model(trained, cache), teacher),
              "student": Frozen(load_model(student, cache), student)}
    specs = {"teacher": ("teacher", "logits"), "frozen": ("student", "logits"),
             "teacher_features": ("teacher", "features")}
    return OnlineBatches(data, student, frozen, specs, n=32, batch_size=8, seed=0,
                         runtime=Runtime(workers=workers), augment=augment)


def _as_digits(data: Dataset) -> Dataset:
    x = data.train_x[:, :1].repeat_interleave(2, 2).repeat_interleave(2, 3)   # 1 x 16 x 16
    return dataclasses.replace(data, train_x=x, eval_x=x)


def test_online_references_are_each_models_own_view_of_the_batch(tiny_zoo, cache):
    """Without augmentation, per-batch outputs equal a direct forward of each model on the same
    samples normalised with *its own* mean/std (the teacher's differ from the student's)."""
    data = _as_digits(_dataset())
    teacher = dataclasses.replace(tiny_zoo.get("efficientnet_tiny"), mean=(0.3,), std=(0.2,))
    online = _online(tiny_zoo, cache, data, augment=lambda x: x, teacher_entry=teacher)
    assert online.ref_dims["teacher"] == 10 and online.ref_dims["teacher_features"] > 0
    batch = next(online.epoch(0))
    x = data.train_x[batch.idx].float() / 255.0
    teacher_model = load_model(tiny_zoo.get("efficientnet_tiny"), cache).eval()
    student_model = load_model(tiny_zoo.get("resnet_tiny"), cache).eval()
    with torch.no_grad():
        expected_t = teacher_model((x - 0.3) / 0.2)
        s_entry = tiny_zoo.get("resnet_tiny")
        expected_f = student_model((x - s_entry.mean[0]) / s_entry.std[0])
    assert torch.allclose(batch.refs["teacher"], expected_t, atol=1e-5)
    assert torch.allclose(batch.refs["frozen"], expected_f, atol=1e-5)
    assert torch.allclose(batch.x, (x - s_entry.mean[0]) / s_entry.std[0])
    assert torch.equal(batch.y, data.train_y[batch.idx])
    # the same batch through the precomputed path
    cached = CachedBatches(data, s_entry, {"teacher": expected_t, "frozen": expected_f},
                           n=32, batch_size=8, seed=0)
    first = cached.batch(torch.arange(8))
    assert torch.equal(first.refs["teacher"], expected_t[:8])


def test_online_batches_are_the_same_with_or_without_loader_workers(tiny_zoo, cache):
    data = _as_digits(_dataset())
    serial = list(_online(tiny_zoo, cache, data, workers=0).epoch(1))
    parallel = list(_online(tiny_zoo, cache, data, workers=1).epoch(1))
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel):
        assert torch.equal(a.idx, b.idx) and torch.equal(a.x, b.x)
        assert torch.equal(a.refs["teacher"], b.refs["teacher"])
    # augmented: the student sees something other than the stored images
    plain = data.train_x[serial[0].idx].float() / 255.0
    s = _online(tiny_zoo, cache, data).entry
    assert not torch.allclose(serial[0].x, (plain - s.mean[0]) / s.std[0])
