"""Transfer losses on tiny hand-made logits, against values worked out by hand (docs/methods.md#kl, docs/methods.md#kl-dp)."""
import math

import pytest
import torch

from benchmark.methods.losses import distill_kl, dp_targets

LN3 = math.log(3.0)


def test_kl_two_classes_by_hand():
    # teacher p = (1/2, 1/2), student p = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)
    teacher = torch.tensor([[0.0, 0.0]])
    student = torch.tensor([[0.0, LN3]])
    assert distill_kl(student, teacher).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)


def test_kl_temperature_scales_by_t_squared_and_batch_is_averaged():
    teacher = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    student = torch.tensor([[0.0, 2 * LN3], [1.0, 2.0]])   # at T = 2 the first row is (1/4, 3/4)
    expected = 4 * 0.5 * math.log(4 / 3) / 2                # T^2 x KL, second row 0, mean of 2
    assert distill_kl(student, teacher, T=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_zero_for_equal_logits_and_for_top1():
    logits = torch.randn(5, 7)
    assert distill_kl(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    # restricted to the teacher's single top class, both distributions are (1,)
    assert distill_kl(torch.randn(5, 7), logits, topk=1).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_topk_restricts_to_teacher_classes():
    teacher = torch.tensor([[5.0, 5.0, -9.0]])       # top-2 = classes 0 and 1, p = (1/2, 1/2)
    student = torch.tensor([[0.0, LN3, 100.0]])      # class 2 is dropped: (1/4, 3/4)
    assert distill_kl(student, teacher, topk=2).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)


def test_kl_weights_average_over_kept_samples_only():
    teacher = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    student = torch.tensor([[0.0, LN3], [0.0, 9.0]])
    kept_first = distill_kl(student, teacher, weights=torch.tensor([1.0, 0.0]))
    assert kept_first.item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    assert distill_kl(student, teacher, weights=torch.zeros(2)).item() == 0.0


TEACHER = torch.tensor([[2.0, 0, 0], [0, 0, 0], [0, 3, 0], [1, 0, 0]])
FROZEN = torch.tensor([[0.0, 2, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0]])
LABELS = torch.tensor([0, 1, 2, 0])


def test_dp_supervised_masks_by_true_class_confidence():
    # p_t[y] vs p_f[y]: .79 > .11 | 1/3 < .58 | .045 < .21 | equal -> tie goes to frozen
    target, mask = dp_targets(TEACHER, FROZEN, LABELS)
    assert mask.tolist() == [True, False, False, False]
    assert torch.equal(target, torch.stack([TEACHER[0], FROZEN[1], FROZEN[2], FROZEN[3]]))


def test_dp_unsupervised_masks_by_max_confidence():
    # max p_t vs max p_f: equal (tie) | 1/3 < .58 | .91 > .58 | equal (tie)
    target, mask = dp_targets(TEACHER, FROZEN)
    assert mask.tolist() == [False, False, True, False]
    assert torch.equal(target, torch.stack([FROZEN[0], FROZEN[1], TEACHER[2], FROZEN[3]]))
