"""Batch sources and the batched augmentation: torchvision's ops sample by sample, the paper's
probabilities, per-batch frozen outputs equal to a direct forward of each model with its own
mean/std, and batches independent of the number of loader workers."""
import dataclasses

import pytest
import torch
import torchvision.transforms.functional as TF

from benchmark.data import augment
from benchmark.training.batches import CachedBatches, Frozen, OnlineBatches, epoch_order
from benchmark.data.datasets import Dataset
from benchmark.models.gpu import Runtime
from benchmark.models.loading import load_model


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


def _torchvision_reference(x, p, i):
    """Sample i of the batch augmented by torchvision's own functional ops, one at a time."""
    img = TF.hflip(x[i]) if p.flip[i] else x[i]
    if p.jitter[i]:
        b, c, sat, h = p.factors[i].tolist()
        ops = (lambda v: TF.adjust_brightness(v, b), lambda v: TF.adjust_contrast(v, c),
               lambda v: TF.adjust_saturation(v, sat), lambda v: TF.adjust_hue(v, h))
        for op in p.order[i].tolist():
            img = ops[op](img)
    if p.gray[i] and img.shape[0] == 3:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return img


@pytest.mark.parametrize("channels", [3, 1])
def test_batched_augmentation_equals_torchvision_sample_by_sample(channels):
    x = torch.rand(64, channels, 12, 12, generator=torch.Generator().manual_seed(0))
    p = augment.sample_params(64, torch.Generator().manual_seed(1))
    assert p.jitter.any() and p.flip.any() and p.gray.any() and not p.jitter.all()
    out = augment.apply(x, p)
    for i in range(64):
        torch.testing.assert_close(out[i], _torchvision_reference(x, p, i), atol=2e-5, rtol=0)
    if channels == 1:                      # saturation, hue and grayscale leave it unchanged
        factors = p.factors.clone()
        factors[:, :2] = 1.0                 # brightness and contrast: identity
        only_colour = dataclasses.replace(p, flip=torch.zeros_like(p.flip), factors=factors)
        torch.testing.assert_close(augment.apply(x, only_colour), x)


def test_augmentation_parameters_follow_the_paper():
    """docs/protocol.md#training: hflip p 0.5, colour distortion p 0.8 with (0.8, 0.8, 0.8, 0.2), grayscale
    p 0.2; the four colour ops in every order."""
    n = 20_000
    p = augment.sample_params(n, torch.Generator().manual_seed(0))
    for mask, rate in ((p.flip, 0.5), (p.jitter, 0.8), (p.gray, 0.2)):
        assert abs(mask.float().mean().item() - rate) < 0.015
    assert p.factors[:, :3].min() >= 0.2 and p.factors[:, :3].max() <= 1.8
    assert p.factors[:, 3].abs().max() <= 0.2 and p.factors[:, 3].std() > 0.1
    orders = {tuple(o) for o in p.order.tolist()}
    assert len(orders) == 24 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    again = augment.sample_params(n, torch.Generator().manual_seed(0))
    assert torch.equal(again.factors, p.factors) and torch.equal(again.order, p.order)


def _online(tiny_zoo, cache, data, workers=0, augmented=True, teacher_entry=None):
    student, trained = tiny_zoo.get("resnet_tiny"), tiny_zoo.get("efficientnet_tiny")
    teacher = teacher_entry or trained
    frozen = {"teacher": Frozen(load_model(trained, cache), teacher),
              "student": Frozen(load_model(student, cache), student)}
    specs = {"teacher": ("teacher", "logits"), "frozen": ("student", "logits"),
             "teacher_features": ("teacher", "features")}
    return OnlineBatches(data, student, frozen, specs, n=32, batch_size=8, seed=0,
                         runtime=Runtime(workers=workers), augmented=augmented)


def _as_digits(data: Dataset) -> Dataset:
    x = data.train_x[:, :1].repeat_interleave(2, 2).repeat_interleave(2, 3)   # 1 x 16 x 16
    return dataclasses.replace(data, train_x=x, eval_x=x)


def test_online_references_are_each_models_own_view_of_the_batch(tiny_zoo, cache):
    """Without augmentation, per-batch outputs equal a direct forward of each model on the same
    samples normalised with *its own* mean/std (the teacher's differ from the student's)."""
    data = _as_digits(_dataset())
    teacher = dataclasses.replace(tiny_zoo.get("efficientnet_tiny"), mean=(0.3,), std=(0.2,))
    online = _online(tiny_zoo, cache, data, augmented=False, teacher_entry=teacher)
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


def test_cached_teacher_outputs_cover_only_the_samples_a_unit_uses(tiny_zoo, cache, monkeypatch):
    """A unit on the first 64 samples pays for one prediction batch, not the whole split; a
    later unit on more samples computes again, one on fewer reuses, and every row equals the
    model's own logits on that sample."""
    from benchmark.models import build, loading
    loading.clear_train_outputs()
    seen = []
    predict = build.predict_outputs
    monkeypatch.setattr(build, "predict_outputs", lambda model, x, *a, **k: (
        seen.append(len(x)), predict(model, x, *a, **k))[1])
    entry = tiny_zoo.models[0]
    from benchmark.data.datasets import load_dataset, normalize
    dataset = load_dataset(tiny_zoo.dataset, cache)
    small = loading.train_outputs(entry, dataset, cache, n=64)
    assert len(small) == 64 and seen == [build.PREDICT_BATCH]
    larger = loading.train_outputs(entry, dataset, cache, n=600)
    assert len(larger) == 600 and seen == [build.PREDICT_BATCH, 2 * build.PREDICT_BATCH]
    again = loading.train_outputs(entry, dataset, cache, n=100)
    assert len(seen) == 2 and torch.equal(again, larger[:100]) and torch.equal(small, larger[:64])
    images = dataset.train_x[:3]
    model = load_model(entry, cache).eval()
    with torch.no_grad():
        expected = model(normalize(images, entry.mean, entry.std))
    torch.testing.assert_close(small[:3], expected, rtol=1e-4, atol=1e-4)
    whole = loading.train_outputs(entry, dataset, cache)
    assert len(whole) == len(load_dataset(tiny_zoo.dataset, cache).train_y) and len(seen) == 3
    loading.clear_train_outputs()
