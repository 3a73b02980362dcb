"""Datasets through timm's readers: the images of one image folder, written as Hugging Face
Parquet files (`hfds:`) and as WebDataset shards (`wds:`), give the same arrays and the same
predict, stats and transfer numbers as the folder itself."""
import json
import os

import numpy as np
import pytest
import torch

from benchmark.data.datasets import eval_split, load_dataset, num_classes_of
from benchmark.data.imagefolder import imagenet_splits

OPTIONS = "size=16,crop_pct=1"


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """Hugging Face datasets prepares its Arrow files in this session's folder, not the user's."""
    import datasets
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf_cache"))
        yield


def write_parquet(root, splits, classes, drop_label=False):
    """`root/data/<split>-00000-of-00001.parquet`, the layout of the hub's imagenet-1k."""
    import datasets
    features = {"image": datasets.Image()}
    if not drop_label:
        features["label"] = datasets.ClassLabel(names=list(classes))
    for name, split in splits.items():
        rows = {"image": [{"bytes": open(p, "rb").read(), "path": os.path.relpath(p, split.root)}
                          for p in split.paths]}
        if not drop_label:
            rows["label"] = split.labels.tolist()
        (root / "data").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(
            str(root / "data" / f"{name}-00000-of-00001.parquet"))
    return root


def write_saved(root, splits, classes):
    """The splits as `datasets.DatasetDict.save_to_disk` writes them (Arrow files per split)."""
    import datasets
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=list(classes))})
    datasets.DatasetDict({name: datasets.Dataset.from_dict(
        {"image": [{"bytes": open(p, "rb").read(), "path": os.path.relpath(p, split.root)}
                   for p in split.paths], "label": split.labels.tolist()}, features=features)
        for name, split in splits.items()}).save_to_disk(str(root))
    return root


def write_shards(root, splits, per_shard=7, label=True):
    """Shards `<split>-NNNN.tar` of `per_shard` samples (`.png` and, with `label`, `.cls`)
    and timm's `_info.json` naming them."""
    import webdataset as wds
    root.mkdir(parents=True, exist_ok=True)
    info = {"name": "tiny", "splits": {}}
    for name, split in splits.items():
        files, lengths = [], []
        for s, start in enumerate(range(0, len(split.paths), per_shard)):
            files.append(f"{name}-{s:04d}.tar")
            with wds.TarWriter(str(root / files[-1])) as sink:
                for p, y in zip(split.paths[start:start + per_shard],
                                split.labels[start:start + per_shard]):
                    key = os.path.relpath(p, split.root).replace(os.sep, "_")[:-4]
                    sample = {"__key__": key, "png": open(p, "rb").read()}
                    sink.write({**sample, "cls": str(int(y)).encode()} if label else sample)
            lengths.append(min(per_shard, len(split.paths) - start))
        info["splits"][name] = {"name": name, "num_samples": sum(lengths), "filenames": files,
                                "shard_lengths": lengths}
    (root / "_info.json").write_text(json.dumps(info))
    return root


@pytest.fixture(scope="module")
def sources(image_folder, tmp_path_factory, hf_cache):
    """One dataset name per source, all of the same images in the same order."""
    root = tmp_path_factory.mktemp("sources")
    train, val = imagenet_splits(image_folder)
    splits = {"train": train, "validation": val}
    write_parquet(root / "hf", splits, train.classes)
    write_saved(root / "saved", splits, train.classes)
    write_shards(root / "wds", splits)
    return {"imagefolder": f"imagefolder:{image_folder}@{OPTIONS}",
            "hfds": f"hfds:{root / 'hf'}@{OPTIONS}",
            "hfds_saved": f"hfds:{root / 'saved'}@{OPTIONS}",
            "wds": f"wds:{root / 'wds'}@{OPTIONS},classes=3",
            # the same shards named by a pattern instead of the split names of _info.json
            "wds_pattern": f"wds:{root / 'wds'}@{OPTIONS},classes=3,train=train-{{0000..0004}}.tar,"
                           "eval=validation-{0000..0001}.tar"}


@pytest.mark.parametrize("source", ["hfds", "hfds_saved", "wds", "wds_pattern"])
def test_a_source_decodes_the_folders_arrays(sources, cache, tmp_path, source):
    folder = load_dataset(sources["imagefolder"] + ",subset=0.5", cache)
    data = load_dataset(sources[source] + ",subset=0.5", cache)
    assert data.num_classes == num_classes_of(sources[source]) == 3
    assert data.train_x.shape == (15, 3, 16, 16) and data.eval_x.shape == (12, 3, 16, 16)
    for field in ("train_x", "train_y", "eval_x", "eval_y", "train_sources", "eval_sources"):
        assert torch.equal(getattr(data, field), getattr(folder, field)), field
    # per-model preprocessing of a split, in any order of samples (the subset's)
    from benchmark.data.splits import decoded_cache
    from benchmark.data.subset import stratified_subset
    from benchmark.data.timm_readers import hfds_splits, wds_splits
    train = (hfds_splits if source.startswith("hfds") else wds_splits)(sources[source])[0]
    folder_train = imagenet_splits(sources["imagefolder"].split(":", 1)[1].split("@")[0])[0]
    idx = stratified_subset(folder_train.labels, 0.5)
    assert (np.diff(idx) < 0).any()
    cfg = dict(input_size=(3, 12, 12), crop_pct=0.9, interpolation="bicubic")
    np.testing.assert_array_equal(
        decoded_cache(train, cfg, tmp_path / source, indices=idx, workers=0),
        decoded_cache(folder_train, cfg, tmp_path / "folder", indices=idx, workers=0))
    names = eval_split(sources[source]).names
    folder_names = [n.split(".")[0].replace("/", "_") for n in eval_split(sources["imagefolder"]).names]
    if source == "hfds_saved":      # save_to_disk keeps an image's base name only
        folder_names = [n.split("_", 1)[1] for n in folder_names]
    assert folder_names == [n.split(".")[0].replace("/", "_") for n in names]


def run_pipeline(zoo, results, cache):
    """predict, stats and one epoch of kl_dp transfer (augmented batches) through the launcher;
    the tables, with what differs between sources (keys, names, times) left out."""
    from benchmark.launch.launcher import LaunchOptions, launch
    from benchmark.methods import resolve_params
    from pairs.plan import make_plan
    from results import read_table
    params = resolve_params("kl_dp", {"epochs": 1, "batch_size": 8, "lr": 0.01})
    plan = make_plan(zoo, [("teacher_e", "student_r")], {"kl_dp": params}, [0])
    summary = launch(plan, results, cache, LaunchOptions(executor="debug", progress=False))
    assert all(s["failed"] == 0 for s in summary.values()), summary
    drop = ["key", "teacher_key", "student_key", "zoo", "dataset", "seconds", "wall_s", "images_per_s", "plan", "host", "job_id",
            "started_at", "finished_at", "source", "code_version"]
    return {table: read_table(results, table).drop(columns=drop, errors="ignore")
            .sort_values(by) .reset_index(drop=True)
            for table, by in (("predictions", ["model", "sample"]), ("models", ["model"]),
                              ("pair_stats", ["teacher"]), ("transfer_epochs", ["epoch"]),
                              ("transfer_runs", ["teacher"]))}


@pytest.fixture(scope="module")
def folder_tables(sources, cache, tmp_path_factory, two_model_zoo):
    root = tmp_path_factory.mktemp("folder_run")
    zoo = two_model_zoo("readers_imagefolder", sources["imagefolder"], root / "weights")
    return run_pipeline(zoo, root / "results", cache)


@pytest.mark.parametrize("source", ["hfds", "wds"])
def test_predict_stats_transfer_on_a_source_match_the_folder(sources, folder_tables, cache,
                                                             tmp_path, source, two_model_zoo):
    import pandas as pd
    zoo = two_model_zoo(f"readers_{source}", sources[source], tmp_path / "weights")
    tables = run_pipeline(zoo, tmp_path / "results", cache)
    assert len(tables["predictions"]) == 2 * 12 and tables["transfer_runs"]["status"][0] == "ok"
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, folder_tables[name], obj=name)


@pytest.mark.parametrize("case, message", [
    ("no_shard_folder", "shard folder"),
    ("no_classes", "give the number of classes"),
    ("missing_shard", "does not exist"),
    ("no_cls", "and a class index (.cls)"),
    ("no_label_column", "no label column 'label'"),
    ("no_hf_folder", "does not exist"),
    ("unknown_split", "Unknown split"),
])
def test_launch_refuses_a_source_it_cannot_read(image_folder, tmp_path, capsys, hf_cache, case,
                                                 message, two_model_zoo):
    """One line on stderr, exit 2, nothing written: checked before any job."""
    from benchmark.cli.main import main
    from benchmark.methods import resolve_params
    from pairs.plan import make_plan, write_plan
    train, val = imagenet_splits(image_folder)
    splits = {"train": train, "validation": val}
    if case == "no_label_column":
        dataset = f"hfds:{write_parquet(tmp_path / 'hf', splits, train.classes, drop_label=True)}"
    elif case == "no_hf_folder":
        dataset = f"hfds:{tmp_path / 'nowhere'}"
    elif case == "unknown_split":
        dataset = f"hfds:{write_parquet(tmp_path / 'hf', splits, train.classes)}@eval=test"
    else:
        shards = write_shards(tmp_path / "wds", splits, label=case != "no_cls")
        if case == "missing_shard":
            (shards / "validation-0001.tar").unlink()
        dataset = {"no_shard_folder": f"wds:{tmp_path / 'nowhere'}@classes=3",
                   "no_classes": f"wds:{shards}"}.get(case, f"wds:{shards}@classes=3")
    zoo = two_model_zoo(f"refused_{case}", dataset, tmp_path / "weights")
    write_plan(make_plan(zoo, [("teacher_e", "student_r")], {"kl": resolve_params("kl")}, [0]),
               tmp_path / "plan.parquet")
    capsys.readouterr()
    code = main(["launch", str(tmp_path / "plan.parquet"), "--results", str(tmp_path / "r"),
                 "--executor", "debug", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("ktbench: error: "), err
    assert message in err, err
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]


def test_the_timm_zoo_reads_its_imagenet_from_the_environment(monkeypatch, tmp_path, capsys):
    """`KTBENCH_IMAGENET` names the timm zoo's dataset; a plan keeps the study's cost model and
    is refused by a launch whose environment names another dataset."""
    import math
    from benchmark.cli.main import main
    from benchmark.methods import resolve_params
    from pairs import get_zoo
    from pairs.catalog_table import catalog_table
    from pairs.cost import estimate_gpu_hours
    from pairs.plan import make_plan, write_plan
    pair, kl = [("resnet18.a1_in1k", "resnet34.a1_in1k")], {"kl": resolve_params("kl")}
    launch = ["launch", str(tmp_path / "plan.parquet"), "--results", str(tmp_path / "r"),
              "--executor", "debug", "--quiet"]
    write_plan(make_plan(get_zoo("timm"), pair, kl, [0]), tmp_path / "plan.parquet")
    capsys.readouterr()
    assert main(launch) == 2                  # `imagenet` names no data
    assert "unknown dataset 'imagenet' (the timm zoo's ImageNet: set KTBENCH_IMAGENET" \
        in capsys.readouterr().err
    source = "hfds:ILSVRC/imagenet-1k@subset=0.1"
    monkeypatch.setenv("KTBENCH_IMAGENET", source)
    zoo = get_zoo("timm")
    assert zoo.dataset == source
    plan = make_plan(zoo, pair, kl, [0])
    assert set(plan["dataset"]) == {source}
    table = catalog_table(zoo)
    hours = estimate_gpu_hours(plan, table)
    assert math.isfinite(hours["total"])
    assert hours == estimate_gpu_hours(plan.assign(dataset="imagenet"), table)
    write_plan(plan, tmp_path / "plan.parquet")
    monkeypatch.setenv("KTBENCH_IMAGENET", "imagefolder:/data/imagenet")
    assert main(launch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the plan is for dataset {source!r}" in err, err


def test_shards_take_class_names_from_a_classnames_file_beside_them(sources, tmp_path):
    import shutil
    from benchmark import data
    # shards record class indices only: without a names file, the names are the indices
    assert data.class_names(sources["wds"]) == ("0", "1", "2")
    # the Parquet files' ClassLabel names are the folder's class folders
    assert data.class_names(sources["hfds"]) == ("n01", "n02", "n03")
    root = tmp_path / "wds"
    shutil.copytree(sources["wds"].split(":", 1)[1].split("@")[0], root)
    (root / "classnames.txt").write_text("tench\n\ngoldfish\ngreat white shark\n")
    assert data.class_names(f"wds:{root}@{OPTIONS},classes=3") == (
        "tench", "goldfish", "great white shark")
    (root / "classnames.txt").write_text("tench\n")
    with pytest.raises(ValueError, match="names 1 classes, the dataset has 3: give one name a "
                                         "line, in class index order"):
        data.class_names(f"wds:{root}@{OPTIONS},classes=3")
