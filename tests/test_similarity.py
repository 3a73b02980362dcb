"""Class-name similarity of each pair's top-p% classes: class names per dataset, the text-encoder
registry and its weights, the vectorised similarities against hand-computed and brute-force
values, the command end to end on the hand-made results folder of test_analysis, and the table
and figure that read it.

The hand embedding (3-D unit vectors; classes named zero..three of dataset "d"):
  e0 = (1, 0, 0), e1 = (0, 1, 0), e2 = (0, 0.6, 0.8), e3 = (0, 0, 1)
  cosine: G01 = G02 = G03 = G13 = 0, G12 = 0.6, G23 = 0.8; mean off the diagonal 1.4 / 6.
In that folder every pair's flips grow with the class (pos = rho * (class + 1)), so its classes
rank 3, 2, 1, 0, and a set of two is {3, 2}: similarity 0.8.
"""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import run_tables
from benchmark import data
from benchmark.cli.main import main
from benchmark.models.weights import WeightSource
from benchmark.semantics import encoders
from benchmark.semantics.run import run_similarity
from benchmark.semantics.similarity import (RandomSets, class_order, cosine_matrix,
                                            pair_similarity, prefix_similarity)
from results.errors import InputError
from test_analysis import make_results

HAND = {"zero": (1.0, 0.0, 0.0), "one": (0.0, 1.0, 0.0), "two": (0.0, 0.6, 0.8),
        "three": (0.0, 0.0, 1.0)}
OFF_DIAGONAL = 1.4 / 6

data.register_class_names("d", lambda: tuple(HAND))


@encoders.register_text_encoder("test-hand", "a fixed 3-D embedding per class name",
                                hub=("nowhere/none", ()))
def _hand(source, device):
    return lambda texts: torch.tensor([HAND[t] for t in texts]) * 2.0   # normalised on the way


# --- class names -------------------------------------------------------------------------------

def test_class_names_of_every_kind_of_dataset(tmp_path):
    assert data.class_names("digits16")[:3] == ("zero", "one", "two")
    imagenet = data.class_names("imagenet")
    assert len(imagenet) == 1000 and imagenet[0].startswith("tench")
    for side in ("train", "val"):
        for folder in ("n01443537", "n01440764"):
            (tmp_path / "syn" / side / folder).mkdir(parents=True)
        for folder in ("sea_otter", "ant"):
            (tmp_path / "plain" / side / folder).mkdir(parents=True)
    # synset folders in sorted order: tench (n01440764) first, then goldfish
    names = data.class_names(f"imagefolder:{tmp_path / 'syn'}")
    assert names[0].startswith("tench") and names[1].startswith("goldfish")
    assert data.class_names(f"imagefolder:{tmp_path / 'plain'}") == ("ant", "sea otter")
    (tmp_path / "plain" / "classnames.txt").write_text("an ant\n\na sea otter\n")
    assert data.class_names(f"imagefolder:{tmp_path / 'plain'}") == ("an ant", "a sea otter")
    (tmp_path / "plain" / "classnames.txt").write_text("only one\n")
    with pytest.raises(ValueError, match="names 1 classes, the folder has 2"):
        data.class_names(f"imagefolder:{tmp_path / 'plain'}")
    with pytest.raises(InputError, match="no class names"):
        data.class_names("nothing-like-it")


# --- the encoder registry and its weights ------------------------------------------------------

def test_text_encoder_weights_resolve_like_model_weights(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    monkeypatch.delenv("KTBENCH_WEIGHTS_DIR", raising=False)
    name = encoders.DEFAULT_ENCODER
    assert encoders.resolve_text_weights(name, "random").describe() == "random-init"
    with pytest.raises(InputError, match="not found; looked at .*nope.pt"):
        encoders.resolve_text_weights(name, tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="junk.pt"):
        encoders.resolve_text_weights(name, tmp_path / "junk.pt")
    save_file({"w": torch.zeros(2)}, str(tmp_path / f"{name}.safetensors"))
    found = encoders.resolve_text_weights(name, folder=tmp_path)
    assert (found.kind, found.path) == ("file", tmp_path / f"{name}.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("benchmark.models.weights.hub_cached", lambda hub_id, files: False)
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):
        encoders.resolve_text_weights(name, folder=tmp_path / "empty")
    monkeypatch.setattr("benchmark.models.weights.hub_cached", lambda hub_id, files: True)
    hub = encoders.resolve_text_weights(name)
    assert hub.kind == "hub" and hub.describe() == f"hub:{encoders.get_text_encoder(name).hub[0]}"
    with pytest.raises(InputError, match="unknown text encoder"):
        encoders.get_text_encoder("word2vec")


def test_the_default_encoder_builds_offline_without_weights():
    """open_clip's CLIP ViT-B/32 text tower, randomly initialised: the plumbing, not the numbers."""
    vectors = encoders.embed_texts(encoders.DEFAULT_ENCODER, WeightSource("random"),
                                   ["tench, Tinca tinca", "goldfish", "zero"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- the similarities --------------------------------------------------------------------------

def _hand_g():
    return cosine_matrix(encoders.embed_texts("test-hand", WeightSource("random"), list(HAND)))


def test_prefix_similarity_by_hand_and_by_brute_force():
    g = _hand_g()
    assert np.allclose(g, [[1, 0, 0, 0], [0, 1, 0.6, 0], [0, 0.6, 1, 0.8], [0, 0, 0.8, 1]])
    means, maxes = prefix_similarity(np.array([[3, 2, 1, 0]]), g)
    # {3}: none; {3, 2}: 0.8; {3, 2, 1}: (0.8 + 0 + 0.6) / 3; all four: 1.4 / 6
    assert np.isnan(means[0, 0]) and np.isnan(maxes[0, 0])
    assert np.allclose(means[0, 1:], [0.8, 1.4 / 3, OFF_DIAGONAL])
    assert np.allclose(maxes[0, 1:], [0.8, 0.8, 0.8])
    rng = np.random.default_rng(1)
    e = rng.normal(size=(30, 8))
    big = cosine_matrix(e / np.linalg.norm(e, axis=1, keepdims=True))
    orders = np.array([rng.permutation(30) for _ in range(4)])
    means, maxes = prefix_similarity(orders, big, 12)
    for r, k in itertools.product(range(4), range(2, 13)):
        sims = [big[a, b] for a, b in itertools.combinations(orders[r, :k], 2)]
        assert math.isclose(means[r, k - 1], np.mean(sims), abs_tol=1e-12)
        assert math.isclose(maxes[r, k - 1], max(sims), abs_tol=1e-12)


def test_class_order_ties_and_the_authors_order():
    pos = np.array([[2, 5, 2, 0], [0, 0, 0, 0]])
    assert class_order(pos).tolist() == [[1, 0, 2, 3], [0, 1, 2, 3]]   # ties by class index
    rng = np.random.default_rng(0)
    flips = rng.integers(0, 3, (20, 30))
    got = class_order(flips, "fantasticgains")
    for row, v in zip(got, flips):          # the authors' np.argsort(v)[::-1] over 1000 columns
        official = np.argsort(np.pad(v, (0, 1000 - len(v))))[::-1]
        assert row.tolist() == official[official < len(v)].tolist()


def test_pair_similarity_rows_by_hand():
    g = _hand_g()
    keys = pd.DataFrame({"teacher": ["t"], "student": ["s"]})
    random_sets = RandomSets(g, 4, draws=2000, seed=0)
    # flips by class [0, 1, 3, 6] (total 10): classes rank 3, 2, 1, 0; sets of 1, 2, 3, 4
    rows = pair_similarity(np.array([[0, 1, 3, 6]]), np.array([[1, 2, 3, 9]]), g, keys,
                           random_sets).set_index("p")
    assert rows["classes"].tolist() == [1, 2, 3, 4]                 # 9 is clipped to the 4 classes
    assert rows["flip_share"].tolist() == [60.0, 90.0, 100.0, 100.0]
    assert np.isnan(rows.loc[2, "mean_sim"]) and np.isnan(rows.loc[2, "mean_sim_rank"])
    assert np.allclose(rows.loc[[5, 20, 50], "mean_sim"], [0.8, 1.4 / 3, OFF_DIAGONAL])
    assert np.allclose(rows["random_mean_sim"], OFF_DIAGONAL)
    # random sets of 4 are all four classes: max 0.8, none below the pair's mean
    assert math.isclose(rows.loc[50, "random_max_sim"], 0.8, abs_tol=1e-6)
    assert rows.loc[50, "mean_sim_rank"] == 0
    # random pairs of classes: 6 equally likely, similarities 0, 0, 0, 0, 0.6, 0.8; 5 of 6 below
    # 0.8, and a mean max of 1.4 / 6 (2000 draws: within a few points)
    assert abs(rows.loc[5, "mean_sim_rank"] - 500 / 6) < 4
    assert abs(rows.loc[5, "random_max_sim"] - OFF_DIAGONAL) < 0.03
    again = pair_similarity(np.array([[0, 1, 3, 6]]), np.array([[1, 2, 3, 9]]), g, keys,
                            RandomSets(g, 4, draws=2000, seed=0))
    pd.testing.assert_frame_equal(rows.reset_index()[again.columns], again)   # seeded draws


# --- the command, the table and the figure ------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    results = make_results(tmp_path_factory.mktemp("similarity"))
    run_similarity(results, encoder="test-hand", weights="random", draws=2000, progress=False)
    return results


def test_similarity_writes_embeddings_and_pairs(folder):
    from results import read_table
    emb = read_table(folder, "class_embeddings").sort_values("class")
    assert emb["name"].tolist() == list(HAND) and set(emb["weights"]) == {"random-init"}
    assert np.allclose(np.stack(emb["embedding"]), list(HAND.values()))
    pairs = read_table(folder, "pair_similarity")
    assert len(pairs) == (9 + 1) * 4                     # 9 pairs and one compat row, 4 p each
    # s1-t1: top-50% (2 classes) is {3, 2}
    row = pairs.query("teacher == 't1' and student == 's1' and compat == '' and p == 50").iloc[0]
    assert (row["classes"], row["mean_sim"], row["max_sim"]) == (2, pytest.approx(0.8),
                                                                 pytest.approx(0.8))
    # flips 6, 12, 18, 24 by class: the top two hold (24 + 18) / 60
    assert row["flip_share"] == pytest.approx(70.0)


def test_class_similarity_table_by_hand(folder):
    table = run_tables(folder, ["class_similarity"])["class_similarity"]
    plain = table[table["compat"] == ""].set_index("p")
    # top-2/5%: one class each, no pairwise similarity; top-20%: 4 pairs with two classes (1 + i % 2)
    assert plain.index.tolist() == [20, 50]
    assert plain["pairs"].tolist() == [4, 9]
    uplift = round(100 * (0.8 / OFF_DIAGONAL - 1), 1)                # 242.9
    for p in (20, 50):
        row = plain.loc[p]
        assert (row["mean_sim"], row["baseline"], row["uplift_pct"]) == (0.8, 0.233, uplift)
        # every pair has the same uplift: its interval is that value
        assert (row["uplift_pct_lo"], row["uplift_pct_hi"]) == (uplift, uplift)
        assert row["above_random_95"] == 0.0                # 0.8 beats 5 of 6 random pairs only
        assert row["ci95_over"] == "pairs"
    compat = table[table["compat"] == "fantasticgains"].set_index("p")
    # the compat row of s1-t1 (top-2%: 2 classes) against the authors' constant 0.61
    assert compat.loc[2, "uplift_pct"] == round(100 * (0.8 - 0.61) / 0.61, 1)
    assert np.isnan(compat.loc[2, "uplift_pct_lo"])          # one pair: no interval


def test_similarity_figure_and_bad_input(folder, tmp_path, capsys):
    from analysis.figures import render_figures
    fig = render_figures(folder, ["class_similarity"])["class_similarity"]
    assert "test-hand" in fig.axes[0].get_title()
    assert main(["similarity", "--results", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ktbench: error: no pair statistics") and err.count("\n") == 1
    assert not (tmp_path / "empty" / "class_embeddings").exists()
    assert main(["similarity", "--results", str(folder), "--weights",
                 str(tmp_path / "missing.pt")]) == 2
    assert "weights for text encoder" in capsys.readouterr().err
