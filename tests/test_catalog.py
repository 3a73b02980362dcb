"""Catalogs: the timm registry as a table, joined with a results CSV, and filters."""
import math

import pytest

from pairs import get_zoo
from pairs.catalog_table import CATALOG_COLUMNS, CatalogFilter, catalog_table, filter_catalog
from pairs.zoos.timm_zoo import family_of, read_results_csv, timm_catalog, zoo_from_table

RESULTS_CSV = """model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation
eva_giant_patch14_560.m30m_ft_in22k_in1k,89.786,10.214,98.992,1.008,"1,014.45",560,1.000,bicubic
convnextv2_large.fcmae_ft_in22k_in1k,87.484,12.516,98.356,1.644,197.96,288,1.000,bicubic
resnet50.a1_in1k,80.1,19.9,94.9,5.1,25.56,224,0.950,bicubic
resnet50.a1_in1k,81.2,18.8,95.1,4.9,25.56,288,1.000,bicubic
resnet18,69.7,30.3,89.1,10.9,11.69,224,0.875,bilinear
mixer_b16_224.goog_in21k_ft_in1k,76.6,23.4,92.2,7.8,59.88,224,0.875,bicubic
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "results-imagenet.csv"
    path.write_text(RESULTS_CSV)
    return timm_catalog(results_csv=path).set_index("name", drop=False)


@pytest.mark.parametrize("arch, family", [
    ("resnet50", "cnn"), ("mixnet_s", "cnn"), ("convnext_small", "cnn"),
    ("vit_base_patch16_224", "transformer"), ("deit3_small_patch16_224", "transformer"),
    ("swin_tiny_patch4_window7_224", "transformer"), ("mixer_b16_224", "mlp"),
    ("resmlp_12_224", "mlp"), ("vit_base_r50_s16_384", "hybrid"), ("coatnet_0_rw_224", "hybrid"),
    ("levit_128", "hybrid"), ("maxvit_tiny_tf_224", "hybrid"),
])
def test_family_rules(arch, family):
    assert family_of(arch) == family


def test_results_csv_numbers_with_thousands_separators(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(RESULTS_CSV)
    df = read_results_csv(path)
    assert df.set_index("model").loc["eva_giant_patch14_560.m30m_ft_in22k_in1k", "params_m"] \
        == pytest.approx(1014.45)
    (tmp_path / "bad.csv").write_text("name,acc\nx,1\n")
    with pytest.raises(ValueError, match="not a timm results CSV"):
        read_results_csv(tmp_path / "bad.csv")


def test_catalog_rows_come_from_pretrained_cfg(catalog):
    assert list(catalog.columns[:len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    assert catalog["name"].is_unique and len(catalog) > 1000
    row = catalog.loc["resnet50.a1_in1k"]
    assert (row.arch, row.family, row.img_size, row.test_img_size) == ("resnet50", "cnn", 224, 288)
    assert (row.crop_pct, row.interpolation, row.num_classes, row.label_offset) == \
        (0.95, "bicubic", 1000, 0)
    assert row["mean"] == pytest.approx((0.485, 0.456, 0.406))


def test_results_join_on_model_and_image_size(catalog):
    # the row at the tag's input size wins over the one at its test size
    assert catalog.loc["resnet50.a1_in1k", "top1"] == pytest.approx(80.1)
    # evaluated at the test input size only (288, input size 224)
    assert catalog.loc["convnextv2_large.fcmae_ft_in22k_in1k", "top1"] == pytest.approx(87.484)
    # an untagged name (older timm CSVs) is the architecture's default tag
    default = catalog[catalog["arch"] == "resnet18"].iloc[0]
    assert default["top1"] == pytest.approx(69.7) and default["params_m"] == pytest.approx(11.69)
    assert catalog.loc["eva_giant_patch14_560.m30m_ft_in22k_in1k", "params_m"] == \
        pytest.approx(1014.45)
    # never instantiated: no CSV row, no size
    assert math.isnan(catalog.loc["resnet50.a2_in1k", "params_m"])


def test_filters(catalog):
    table = catalog.reset_index(drop=True)
    resnets = filter_catalog(table, CatalogFilter(include=("resnet50",)))
    assert len(resnets) > 5 and set(resnets["arch"]) == {"resnet50"}
    wild = filter_catalog(table, CatalogFilter(include=("resnet5*", "mixer_*"),
                                               exclude=("*.a1*",)))
    assert not wild["name"].str.contains(r"\.a1").any()
    assert {"resnet50", "mixer_b16_224"} <= set(wild["arch"])
    in1k = filter_catalog(table, CatalogFilter(in1k=True))
    assert set(in1k["num_classes"]) == {1000} and len(in1k) < len(table)
    sized = filter_catalog(table, CatalogFilter(params_m=(20, 100)))
    assert sorted(sized["name"]) == ["mixer_b16_224.goog_in21k_ft_in1k", "resnet50.a1_in1k"]
    accurate = filter_catalog(table, CatalogFilter(top1=(85, math.inf), families=("cnn",)))
    assert accurate["name"].tolist() == ["convnextv2_large.fcmae_ft_in22k_in1k"]


def test_local_weight_files_by_name_or_architecture(tmp_path):
    (tmp_path / "resnet18.a1_in1k.safetensors").write_bytes(b"")
    (tmp_path / "mixnet_s.pth").write_bytes(b"")      # the default tag of mixnet_s
    (tmp_path / "notes.txt").write_text("")
    table = timm_catalog(weights_dir=tmp_path).set_index("name")
    assert table.loc["resnet18.a1_in1k", "weights"] == str(tmp_path / "resnet18.a1_in1k.safetensors")
    assert table.loc["mixnet_s.ft_in1k", "weights"] == str(tmp_path / "mixnet_s.pth")
    assert table.loc["resnet18.a2_in1k", "weights"] is None
    (tmp_path / "resnet50.pth").write_bytes(b"")
    table = timm_catalog(weights_dir=tmp_path).set_index("name")
    assert table.loc["resnet50.a1_in1k", "weights"] == str(tmp_path / "resnet50.pth")  # default
    assert table.loc["resnet50.tv_in1k", "weights"] is None
    zoo = zoo_from_table(table.reset_index(), "some", "imagenet")
    assert zoo.get("resnet50.a1_in1k").weights == str(tmp_path / "resnet50.pth")
    assert zoo.get("resnet50.tv_in1k").weights is None
    assert zoo.models[0].arch == zoo.models[0].name        # the timm name carries its tag


def test_timm_zoo_is_registered_and_cached():
    zoo = get_zoo("timm")
    assert zoo.dataset == "imagenet" and get_zoo("timm") is zoo
    entry = zoo.get("vit_base_patch16_224.augreg_in21k_ft_in1k")
    assert entry.family == "transformer" and entry.num_classes == 1000 and entry.mean == (0.5,) * 3
    assert len(catalog_table(zoo)) == len(zoo.models)


def test_micro_zoo_is_a_catalog_too():
    table = catalog_table(get_zoo("micro"))
    assert list(table.columns) == CATALOG_COLUMNS
    assert set(table["family"]) == {"cnn", "transformer", "mlp"}
    assert filter_catalog(table, CatalogFilter(families=("mlp",)))["name"].tolist() == \
        ["mixer_micro", "resmlp_micro"]
