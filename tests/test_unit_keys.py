"""Unit keys, plan ids and the plan's params text, pinned to the values the code gave before
units, plans and training settings became typed: a key that moved would orphan every result
already written under it."""
from pairs import get_zoo
from pairs.multi import make_multi_plan, merge_plans
from pairs.plan import Plan, make_plan
from benchmark.launch.pending import pending_units
from benchmark.methods import partition_methods, resolve_params

TEACHER, OTHER, STUDENT = "resnet_tiny", "efficientnet_tiny", "resmlp_tiny"


def _plans():
    zoo = get_zoo("tiny")
    single = make_plan(zoo, [(TEACHER, OTHER)], {"kl": resolve_params("kl", zoo.transfer_defaults)},
                       [0, 1])
    multi = make_multi_plan(zoo, STUDENT, [TEACHER, OTHER], ["sequential", "parallel", "soup"],
                            {"kl_dp": resolve_params("kl_dp", zoo.transfer_defaults)}, [0],
                            partition_methods=partition_methods())
    return zoo, single, multi, merge_plans([single, multi])


def test_transfer_keys_plan_ids_and_params_text_are_as_before():
    _, single, multi, merged = _plans()
    assert list(single["key"]) == ["transfer-5ed2c4866c59d8af", "transfer-70f0ef7b78cc041b"]
    assert single["plan"][0] == "plan-6d35ee86dc89953c"
    assert single["params"][0] == (
        '{"T": 1.0, "augment": false, "batch_size": 128, "diverge_margin": 20.0, "epochs": 1, '
        '"lr": 0.003, "momentum": 0.9, "precision": "bf16", "topk": null, '
        '"train_samples": 1024, "weight_decay": 0.0001}')
    assert list(zip(multi["mode"], multi["key"])) == [
        ("", "transfer-ea85dc3560591c72"), ("", "transfer-1305e875ed81daef"),
        ("sequential", "transfer-a257db3f6d2338f6"), ("parallel", "transfer-9a3775096c01a051"),
        ("soup", "transfer-2287d998e4e623db")]
    assert multi["plan"][0] == "plan-1d770a9a4cd439a4"
    assert merged["plan"][0] == "plan-23fc669f01f3d091"


def test_predict_and_stats_keys_and_kept_students_are_as_before(tmp_path):
    _, _, _, merged = _plans()
    pending = pending_units(merged, tmp_path)
    assert [(u.model, u.key) for u in pending["predict"]] == [
        (OTHER, "predict-22f8890ac2f8e04d"), (STUDENT, "predict-be3f31218174e88a"),
        (TEACHER, "predict-ee9c62bec0e6e72f")]
    assert [(u.compat, u.key) for u in pending["stats"]] == [("", "stats-eda485334ef99a4e")]
    assert Plan(merged).kept_students("soup") == {"transfer-1305e875ed81daef",
                                                  "transfer-ea85dc3560591c72"}
