"""The probe stage (docs/protocol.md#probes): a linear head fitted on frozen features, the
probed model it makes, a kill in the middle, and the bad input it refuses."""
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmark import data
from benchmark.cli.main import main
from benchmark.data.datasets import register_dataset
from benchmark.launch.pending import pending_units
from benchmark.models.build import create_model
from benchmark.models.loading import load_model, resolve_weights
from benchmark.units import probe as probe_module
from benchmark.units.dispatch import run_unit
from benchmark.units.unit import PROBE
from pairs import get_zoo
from pairs.catalog import PLUGINS_ENV
from pairs.plan import make_plan
from pairs.probe import PROBE_RECIPES, backbone_of, probed_name
from results import InputError, ResultsLayout, query, read_table
from results.verify import verify


@pytest.mark.parametrize("recipe", ["sgd", "lbfgs"])
def test_probe_recovers_a_known_linear_rule(recipe):
    # two classes split by the hyperplane w . x = 0, with a margin: any separating head's
    # weight difference points along w
    gen = np.random.default_rng(0)
    w = np.array([2.0, -1.0, 0.5, 0.0, 1.0])
    x = gen.normal(size=(2000, 5))
    x = x[np.abs(x @ w) / np.linalg.norm(w) > 0.3][:400]
    y = (x @ w > 0).astype(np.int64)
    head = probe_module.fit_head(x, y, 2, PROBE_RECIPES[recipe])
    assert probe_module.head_top1(head, x, y) == 100.0
    direction = (head.weight[1] - head.weight[0]).detach().numpy()
    cosine = direction @ w / np.linalg.norm(direction) / np.linalg.norm(w)
    assert cosine > 0.95, cosine


@pytest.fixture(scope="module")
def probed(tiny_zoo):
    return get_zoo(probed_name("tiny", "digits_shift", "lbfgs"))


def test_probed_zoo_keeps_backbones_and_takes_the_datasets_classes(probed, tiny_zoo):
    for entry, base in zip(probed.models, tiny_zoo.models):
        assert entry.num_classes == 5 and backbone_of(entry) == base
        assert entry.fingerprint() != base.fingerprint()     # results never mix with the zoo's
    assert probed.dataset == "digits_shift"


def test_probe_then_predict_is_backbone_plus_head(probed, tiny_zoo, cache, tmp_path):
    entry = probed.models[0]
    units = pending_units(make_plan(probed, [(entry.name, probed.models[1].name)],
                                    {"kl": {}}, [0]), tmp_path)
    unit = next(u for u in units["probe"] if u.model == entry.name)
    assert run_unit(unit, tmp_path, cache) == "ok"
    row = read_table(tmp_path, "probes").iloc[0]
    assert (row["model"], row["dataset"], row["recipe"]) == (entry.name, "digits_shift", "lbfgs")
    # the head is a result: in the results folder, named by the probe's key; none in the cache
    assert row["head"] == f"probe_heads/{unit.key}.safetensors"
    assert (tmp_path / row["head"]).is_file() and not (cache / "probe_heads").exists()
    assert PROBE.done_ids(tmp_path, "digits_shift") == {unit.key}
    predict = next(u for u in units["predict"] if u.model == entry.name)
    assert run_unit(predict, tmp_path, cache) == "ok"
    # by hand: the zoo's own model, its pooled features, the head file's affine map
    base = tiny_zoo.models[0]
    model = create_model(base, resolve_weights(base, cache))
    head = load_file(str(tmp_path / row["head"]))
    dataset = data.load_dataset("digits_shift", cache)
    with torch.inference_mode():
        x = data.normalize(dataset.eval_x, base.mean, base.std)
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        logits = feats @ head["weight"].T + head["bias"]
    preds = query(tmp_path, "SELECT pred, p_true FROM predictions ORDER BY sample")
    np.testing.assert_array_equal(preds["pred"], logits.argmax(1).numpy())
    p_true = logits.softmax(1).gather(1, dataset.eval_y.view(-1, 1)).squeeze(1).numpy()
    np.testing.assert_allclose(preds["p_true"], p_true, atol=1e-5)
    assert row["eval_top1"] == pytest.approx(100.0 * float(
        (logits.argmax(1) == dataset.eval_y).float().mean()))


class _Killed(BaseException):
    """The process dies (nothing that isolates a unit's failure catches it)."""


def test_kill_during_probe_then_relaunch_probes_each_model_once(probed, cache, tmp_path,
                                                                 monkeypatch):
    plan = make_plan(probed, [(probed.models[0].name, probed.models[1].name)], {"kl": {}}, [0])
    save = probe_module.save_head

    def save_then_die(head, path):
        save(head, path)          # the head is on disk, its row is not: the unit is not done
        raise _Killed

    monkeypatch.setattr(probe_module, "save_head", save_then_die)
    first = pending_units(plan, tmp_path)["probe"]
    with pytest.raises(_Killed):
        run_unit(first[0], tmp_path, cache)
    monkeypatch.setattr(probe_module, "save_head", save)
    assert len(pending_units(plan, tmp_path)["probe"]) == 2     # the killed one runs again
    for unit in pending_units(plan, tmp_path)["probe"]:
        run_unit(unit, tmp_path, cache)
    assert pending_units(plan, tmp_path)["probe"] == []
    rows = read_table(tmp_path, "probes")
    assert sorted(rows["key"]) == sorted(u.key for u in first)


def test_a_head_of_the_wrong_shape_is_one_line_and_loads_nothing(probed, cache, tmp_path):
    entry = probed.models[1]
    path = ResultsLayout(tmp_path).probe_head(entry.probe["key"])
    path.parent.mkdir(parents=True)
    save_file({"weight": torch.zeros(3, 7), "bias": torch.zeros(3)}, str(path))
    with pytest.raises(InputError, match=r"holds .* needs weight \(5, ") as e:
        load_model(entry, cache, ResultsLayout(tmp_path))
    assert "\n" not in str(e.value)


def test_verify_reports_a_cut_or_misshapen_head_and_fix_makes_the_probe_run_again(
        probed, cache, tmp_path, capsys):
    plan = make_plan(probed, [(probed.models[0].name, probed.models[1].name)], {"kl": {}}, [0])
    units = pending_units(plan, tmp_path)["probe"]
    for unit in units:
        run_unit(unit, tmp_path, cache)
    layout = ResultsLayout(tmp_path)
    cut, misshapen = (layout.probe_head(unit.key) for unit in units)
    cut.write_bytes(cut.read_bytes()[:-16])                 # a copy cut short
    dim = read_table(tmp_path, "probes").set_index("key").loc[units[1].key, "dim"]
    # whole and float32, but not what its row records: 5 classes of `dim` features
    save_file({"weight": torch.zeros(5, dim + 1), "bias": torch.zeros(5)}, str(misshapen))
    assert main(["verify", "--results", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{cut}: not a whole safetensors file" in out
    assert f"{misshapen}: holds" in out and f"(C, D) = (5, {dim})" in out
    assert "2 probe heads: 2 problem(s)" in out
    assert pending_units(plan, tmp_path)["probe"] == []     # verify alone changes nothing
    assert main(["verify", "--results", str(tmp_path), "--fix"]) == 0
    assert capsys.readouterr().err.count("ktbench: warning: ") == 2
    assert sorted(p.name for p in (tmp_path / "quarantine" / "probe_heads").iterdir()) == \
        sorted([cut.name, misshapen.name])
    # the row stays, the head is gone: both probes run again, and the folder is whole after
    assert sorted(u.key for u in pending_units(plan, tmp_path)["probe"]) == \
        sorted(u.key for u in units)
    for unit in pending_units(plan, tmp_path)["probe"]:
        run_unit(unit, tmp_path, cache)
    assert verify(tmp_path).ok and pending_units(plan, tmp_path)["probe"] == []


@register_dataset("one_class_test", version=1, num_classes=1)
def _one_class(d):
    raise AssertionError("never built: refused before")


def test_a_dataset_with_one_class_is_one_line_and_exit_2(capsys, tmp_path):
    code = main(["plan", "--zoo", "tiny", "--dataset", "one_class_test", "--all",
                 "--out", str(tmp_path / "out.parquet"), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a probe needs at least 2" in err, err
    assert not (tmp_path / "out.parquet").exists()
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]


def test_plan_dataset_matching_heads_needs_probe(capsys, tmp_path):
    assert main(["plan", "--zoo", "tiny", "--dataset", "digits16", "--all", "--dry-run",
                 "--results", str(tmp_path)]) == 0
    assert main(["plan", "--zoo", "tiny", "--dataset", "digits16", "--probe", "--all",
                 "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    probe_rows = [line for line in out.splitlines() if line.startswith("| probe ")]
    assert [row.split("|")[2].strip() for row in probe_rows] == ["3"]    # unprobed: no row


def test_sgd_schedule_warms_up_then_follows_a_cosine():
    recipe = dict(PROBE_RECIPES["sgd"], lr=0.1, eta_min=0.0, warmup_fraction=0.1)
    lrs = [probe_module.cosine_lr(step, 100, recipe) for step in range(100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)   # 10 warmup steps
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[55] == pytest.approx(0.05)                      # half way down the cosine
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 89 / 90)))


def test_a_probe_stores_its_features_and_a_relaunch_reuses_them(probed, cache, tmp_path,
                                                                 monkeypatch):
    from benchmark.units.features import features_unit, load_split
    from results import table_dir
    entry = probed.models[2]
    dataset = data.load_dataset("digits_shift", cache)
    unit = next(u for u in pending_units(make_plan(probed, [(entry.name, probed.models[0].name)],
                                                   {"kl": {}}, [0]), tmp_path)["probe"]
                if u.model == entry.name)
    assert run_unit(unit, tmp_path, cache) == "ok"
    # the probe left the probed model's features over both whole splits, logits from its head
    stored = features_unit(probed, entry.name, None, len(dataset.train_y))
    arrays = load_split(tmp_path, [entry.name], "digits_shift", "eval", keys=[stored.key])
    assert arrays.samples == len(dataset.eval_y)
    np.testing.assert_array_equal(arrays.labels, dataset.eval_y.numpy())
    head = load_file(str(ResultsLayout(tmp_path).probe_head(unit.key)))
    by_hand = np.asarray(arrays.features[0], np.float32) @ head["weight"].numpy().T + head["bias"].numpy()
    np.testing.assert_allclose(np.asarray(arrays.logits[0], np.float32), by_hand, atol=0.05)
    first = read_table(tmp_path, "probes").iloc[0]
    # killed after the features, before the row: the relaunch makes no forward pass
    (table_dir(tmp_path, "probes") / f"{unit.key}.parquet").unlink()

    def no_forward(*args, **kwargs):
        raise AssertionError("a second forward pass")

    monkeypatch.setattr(probe_module, "forward_features", no_forward)
    assert run_unit(unit, tmp_path, cache) == "ok"
    again = read_table(tmp_path, "probes").iloc[0]
    assert again["key"] == first["key"]
    assert abs(again["eval_top1"] - first["eval_top1"]) < 1.0    # float16 features: near


def test_a_probed_zoos_backbones_train_on_their_own_dataset(probed, tiny_zoo, monkeypatch):
    from benchmark.models import microzoo
    trained = []
    monkeypatch.setattr(microzoo, "load_dataset", lambda name, cache: name)
    monkeypatch.setattr(microzoo, "weights_path",
                        lambda entry, cache: microzoo.Path("/nonexistent") / entry.name)
    monkeypatch.setattr(microzoo, "_train_missing",
                        lambda entries, data, cache, done: trained.append((entries, data)))
    microzoo.ensure_zoo_weights(probed, "/nonexistent", progress=False)
    # the zoo's own models (the keys of their weight files) on the zoo's own data
    assert trained == [(list(tiny_zoo.models), "digits16")]


_PLAIN_PLUGIN = """
    import torch
    from timm.models import register_model
    from pairs import ModelEntry, Zoo, register_zoo

    class PlainNet(torch.nn.Module):
        # a classifier without timm's feature interface (no forward_features / forward_head)
        def __init__(self, num_classes, in_chans):
            super().__init__()
            self.fc = torch.nn.Linear(in_chans * 16 * 16, num_classes)

        def forward(self, x):
            return self.fc(x.flatten(1))

    @register_model
    def plain_net_probe_test(pretrained=False, num_classes=10, in_chans=1, **kwargs):
        return PlainNet(num_classes, in_chans)

    @register_zoo("plain_zoo")
    def zoo():
        return Zoo("plain_zoo", "digits16", tuple(
            ModelEntry(name, "plain_net_probe_test", "mlp", 10, in_chans=1,
                       input_size=(1, 16, 16)) for name in ("plain_a", "plain_b")))
    """


def test_a_model_without_forward_head_is_refused_before_any_job(tmp_path, monkeypatch, capsys):
    (tmp_path / "plain_plugin.py").write_text(textwrap.dedent(_PLAIN_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, "")       # restored after the test: --plugin adds to it
    plan = tmp_path / "plan.parquet"
    assert main(["plan", "--plugin", "plain_plugin", "--zoo", "plain_zoo", "--dataset",
                 "digits_shift", "--all", "--out", str(plan)]) == 0   # 10 classes -> 5: a probe
    capsys.readouterr()
    results = tmp_path / "r"
    code = main(["launch", str(plan), "--plugin", "plain_plugin", "--results", str(results),
                 "--executor", "debug", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "'plain_a' (plain_net_probe_test, PlainNet) has no forward_features, forward_head" \
        in err, err
    assert not [f for f in results.rglob("*") if f.is_file()]     # no row, no head, no failure


def test_the_probe_unit_refuses_a_model_without_forward_head_before_it_writes(
        probed, cache, tmp_path, monkeypatch):
    """What the pre-flight cannot see (an architecture not buildable on the meta device)."""
    unit = pending_units(make_plan(probed, [(probed.models[0].name, probed.models[1].name)],
                                   {"kl": {}}, [0]), tmp_path)["probe"][0]
    monkeypatch.setattr(probe_module, "load_model",
                        lambda entry, cache: torch.nn.Linear(256, 10))
    with pytest.raises(InputError, match=r"\(\w+, Linear\) has no forward_features, "
                                         r"forward_head, reset_classifier, get_classifier"):
        run_unit(unit, tmp_path, cache)
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]
