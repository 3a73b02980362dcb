"""digits16: deterministic, disjoint splits, balanced, cached; plus `normalize`."""
import dataclasses

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from benchmark import data
from benchmark.data import datasets
from results.errors import InputError

FIELDS = ("train_x", "train_y", "eval_x", "eval_y", "train_sources", "eval_sources")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def digits(cache):
    return data.load_dataset("digits16", cache)


def test_shapes_and_types(digits):
    assert digits.num_classes == 10
    assert digits.train_x.dtype == digits.eval_x.dtype == torch.uint8
    assert digits.train_y.dtype == digits.eval_y.dtype == torch.int64
    assert digits.train_x.shape[1:] == digits.eval_x.shape[1:] == (1, 16, 16)
    assert len(digits.train_x) >= 10_000
    assert len(digits.eval_x) >= 2_000
    assert len(digits.train_y) == len(digits.train_sources) == len(digits.train_x)
    assert len(digits.eval_y) == len(digits.eval_sources) == len(digits.eval_x)


def test_regeneration_is_bit_identical(digits, tmp_path):
    again = data.load_dataset("digits16", tmp_path)
    for field in FIELDS:
        assert torch.equal(getattr(digits, field), getattr(again, field)), field


def test_no_source_image_in_both_splits(digits):
    train, evals = set(digits.train_sources.tolist()), set(digits.eval_sources.tolist())
    assert not train & evals
    # sklearn's 1797 digits split about 2/3 : 1/3, every source used
    assert len(train) + len(evals) == 1797
    assert 0.28 < len(evals) / 1797 < 0.38


def test_labels_are_those_of_the_source_images(digits):
    target = load_digits().target
    assert np.array_equal(digits.train_y.numpy(), target[digits.train_sources.numpy()])
    assert np.array_equal(digits.eval_y.numpy(), target[digits.eval_sources.numpy()])


def test_classes_are_balanced(digits):
    for labels in (digits.train_y, digits.eval_y):
        share = torch.bincount(labels, minlength=10).double() / len(labels)
        assert share.min() > 0.085 and share.max() < 0.115, share


def test_images_are_not_blank_or_saturated(digits):
    x = digits.eval_x.float() / 255
    per_image_mean = x.mean(dim=(1, 2, 3))
    assert 0.1 < x.mean() < 0.4
    assert (per_image_mean > 0.02).all() and (per_image_mean < 0.9).all()


def test_cache_hit_loads_instead_of_regenerating(digits, cache, monkeypatch):
    cached = data.cache_path("digits16", cache)
    assert cached.is_dir() and cached.parent == cache / "data"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{k}.npy" for k in datasets._ARRAYS)
    mtime = cached.stat().st_mtime_ns

    def must_not_build(definition):
        raise AssertionError("regenerated although cached")

    builder = datasets._DATASETS["digits16"]
    monkeypatch.setitem(datasets._DATASETS, "digits16", dataclasses.replace(builder, build=must_not_build))
    again = data.load_dataset("digits16", cache)
    assert torch.equal(again.eval_x, digits.eval_x)
    assert cached.stat().st_mtime_ns == mtime
    assert not [p for p in cached.parent.iterdir() if p != cached]   # no temporary leftovers


def test_unknown_dataset_raises_key_error_listing_known(tmp_path):
    with pytest.raises(InputError, match="digits16"):
        data.load_dataset("no-such-data", tmp_path)


def test_normalize_per_channel():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3).repeat(1, 2, 1, 1)
    out = data.normalize(x, mean=(0.2, 0.5), std=(0.5, 0.25))
    assert out.dtype == torch.float32
    expected = torch.tensor([[[[-0.4, 0.0, 1.6]]], [[[-2.0, -1.2, 2.0]]]]).view(1, 2, 1, 3)
    assert torch.allclose(out, expected, atol=1e-6)
