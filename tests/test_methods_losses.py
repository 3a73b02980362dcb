"""Every method's loss on tiny hand-made tensors, in both modes, against values worked out by hand
(in the comments) or by a plain-Python reference; and the stateful parts (MCL's slow weights,
CRD's memory bank) step by step."""
import math

import numpy as np
import pytest
import torch

from benchmark.methods.losses import (crd_nce_loss, distill_kl, dp_kl, dp_targets, flip_masks,
                              multi_dp_targets, relational_cd, xe, xe_kl)
from benchmark.methods import SetupContext, get_method, resolve_params

FG = "fantasticgains"
LN3 = math.log(3.0)
E = math.e


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


# --- cross-entropy and XE-KL ------------------------------------------------------------------

def test_xe_on_logits_and_compat_on_probabilities():
    logits, label = torch.tensor([[0.0, LN3]]), torch.tensor([1])
    # softmax = (1/4, 3/4): CE = -ln 3/4
    assert xe(logits, label).item() == pytest.approx(math.log(4 / 3), rel=1e-6)
    # official: CE of the probabilities taken as logits: -ln(e^.75 / (e^.25 + e^.75))
    assert xe(logits, label, compat=FG).item() == pytest.approx(math.log(1 + E ** -0.5), rel=1e-6)


def test_xe_kl_mixes_alpha_kl_and_xe_in_both_modes():
    teacher, student, label = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, LN3]]), torch.tensor([0])
    kl = 0.5 * math.log(4 / 3)                  # KL((1/2,1/2) || (1/4,3/4))
    assert xe_kl(student, teacher, label, alpha=0.5).item() == pytest.approx(
        0.5 * kl + 0.5 * math.log(4), rel=1e-6)                       # CE = -ln 1/4
    assert xe_kl(student, teacher, label, alpha=0.5, compat=FG).item() == pytest.approx(
        0.5 * kl + 0.5 * math.log(1 + E ** 0.5), rel=1e-6)            # -ln(e^.25/(e^.25+e^.75))
    assert xe_kl(student, teacher, label, alpha=1.0).item() == pytest.approx(kl, rel=1e-6)


def test_label_smoothing_by_hand_in_both_modes():
    logits, label = torch.tensor([[0.0, LN3]]), torch.tensor([1])
    # softmax (1/4, 3/4); a = 0.1 smooths the target to (0.05, 0.95)
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    assert xe(logits, label, label_smoothing=0.1).item() == pytest.approx(expected, rel=1e-6)
    # official: the probabilities are smoothed, 0.8 (1/4, 3/4) + 0.2 / 2 = (0.3, 0.7), then
    # scored as logits: -ln(e^.7 / (e^.3 + e^.7))
    assert xe(logits, label, FG, label_smoothing=0.2).item() == pytest.approx(
        math.log(1 + E ** -0.4), rel=1e-6)
    for compat in (None, FG):
        assert torch.equal(xe(logits, label, compat, 0.0), xe(logits, label, compat))
        with pytest.raises(ValueError, match="label_smoothing"):
            xe(logits, label, compat, label_smoothing=1.5)
    teacher = torch.tensor([[0.0, 0.0]])
    assert xe_kl(logits, teacher, label, alpha=0.5, label_smoothing=0.1).item() == pytest.approx(
        0.5 * 0.5 * math.log(4 / 3) + 0.5 * expected, rel=1e-6)


def test_xekl_label_smoothing_parameter():
    """xekl's label_smoothing (default 0: plain labels) reaches its cross-entropy; a plan older
    than the parameter runs without smoothing."""
    torch.manual_seed(0)
    student, x, y = torch.nn.Linear(3, 4), torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
    refs = {"teacher": torch.randn(5, 4)}
    params = resolve_params("xekl")
    assert params["label_smoothing"] == 0.0
    older = {k: v for k, v in params.items() if k != "label_smoothing"}
    smoothed = resolve_params("xekl", {"label_smoothing": 0.1})
    for p, a in ((params, 0.0), (older, 0.0), (smoothed, 0.1)):
        logits, losses, _ = get_method("xekl")(p).forward_train(student, x, y, refs)
        log_q = torch.log_softmax(logits, 1).detach()
        target = torch.full((5, 4), a / 4)
        target[torch.arange(5), y] += 1 - a
        assert losses["xe"].item() == pytest.approx(
            0.5 * -(target * log_q).sum(1).mean().item(), rel=1e-5), a


def test_distill_kl_is_the_same_in_both_modes():
    t, s = torch.randn(4, 6), torch.randn(4, 6)
    for topk in (None, 3):
        assert distill_kl(s, t, T=2.0, topk=topk, compat=FG).item() == pytest.approx(
            distill_kl(s, t, T=2.0, topk=topk).item())


def test_unknown_compat_is_refused_everywhere():
    t = torch.zeros(1, 2)
    for call in (lambda: distill_kl(t, t, compat="x"), lambda: xe(t, torch.tensor([0]), "x"),
                 lambda: dp_targets(t, t, compat="x"), lambda: relational_cd(t, t, "x")):
        with pytest.raises(ValueError, match="compat"):
            call()


# --- data partitioning ------------------------------------------------------------------------

def test_dp_kl_topk_uses_the_target_own_classes_and_compat_the_teachers():
    teacher = torch.tensor([[5.0, 5.0, -9.0]])      # its top-2: classes 0 and 1
    frozen = torch.tensor([[-9.0, 0.0, LN3]])       # p(2) ~ 3/4 >> teacher's p(2): frozen wins
    student = torch.zeros(1, 3)
    label = torch.tensor([2])
    loss, mask = dp_kl(student, teacher, frozen, label, topk=2)
    assert mask.tolist() == [False]
    # default: the frozen student's own top-2, classes 2 and 1: (3/4, 1/4) vs (1/2, 1/2)
    assert loss.item() == pytest.approx(_kl([0.75, 0.25], [0.5, 0.5]), rel=1e-6)
    # compat: frozen logits gathered at the teacher's top-2, classes 0 and 1: (-9, 0)
    p0 = 1 / (1 + E ** 9)
    loss, _ = dp_kl(student, teacher, frozen, label, topk=2, compat=FG)
    assert loss.item() == pytest.approx(_kl([p0, 1 - p0], [0.5, 0.5]), rel=1e-5)
    # without top-k both modes are plain KL to the chosen row
    full = _kl(_softmax([-9.0, 0.0, LN3]), [1 / 3] * 3)
    for compat in (None, FG):
        assert dp_kl(student, teacher, frozen, label, compat=compat)[0].item() == pytest.approx(
            full, rel=1e-6)


def test_multi_dp_picks_the_most_confident_source_ties_to_the_earlier():
    frozen = torch.tensor([[0.0, 0.0], [LN3, 0.0], [0.0, 0.0]])
    t1 = torch.tensor([[LN3, 0.0], [LN3, 0.0], [0.0, LN3]])
    t2 = torch.tensor([[LN3, 0.0], [0.0, 0.0], [0.0, 2 * LN3]])
    labels = torch.tensor([0, 0, 1])
    # p[y]: sample 0: .5 / .75 / .75 -> t1 (tie with t2); 1: .75 / .75 / .5 -> frozen (tie);
    # 2: .5 / .75 / .9 -> t2
    target, source = multi_dp_targets([t1, t2], frozen, labels)
    assert source.tolist() == [0, -1, 1]
    assert torch.equal(target, torch.stack([t1[0], frozen[1], t2[2]]))
    # unsupervised, max softmax: 0: .5 / .75 / .75 -> t1; 1: .75 / .75 / .5 -> frozen; 2: t2
    assert multi_dp_targets([t1, t2], frozen)[1].tolist() == [0, -1, 1]


def test_dp_targets_is_multi_dp_with_one_teacher():
    t, f, y = torch.randn(20, 5), torch.randn(20, 5), torch.randint(0, 5, (20,))
    target, mask = dp_targets(t, f, y)
    expected = t.softmax(1).gather(1, y[:, None])[:, 0] > f.softmax(1).gather(1, y[:, None])[:, 0]
    assert mask.tolist() == expected.tolist()
    assert torch.equal(target, torch.where(mask[:, None], t, f))


# --- MCL's filter -----------------------------------------------------------------------------

def test_flip_masks():
    student = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    teacher = torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0], [0, 1.0]])
    pos, neg, neut = flip_masks(student, teacher, torch.tensor([0, 0, 0, 0]))
    assert pos.tolist() == [False, False, True, False]      # teacher right, student wrong
    assert neg.tolist() == [False, True, False, False]      # student right, teacher wrong
    assert neut.tolist() == [True, False, False, True]


def test_mcl_loss_skips_negative_flips_in_the_kl_only():
    params = resolve_params("xekl_mcl", {"topk": None})
    method = get_method("xekl_mcl")(params)
    student = torch.nn.Identity()
    x = torch.tensor([[2.0, 0.0], [0.0, LN3]])        # sample 0: student right
    teacher = torch.tensor([[0.0, 1.0], [0.0, 0.0]])   # sample 0: teacher wrong -> negative flip
    y = torch.tensor([0, 0])
    _, losses, _ = method.forward_train(student, x, y, {"teacher": teacher})
    a = params["alpha"]
    assert losses["kl"].item() == pytest.approx(a * 0.5 * math.log(4 / 3), rel=1e-6)
    ce = (-math.log(_softmax([2.0, 0.0])[0]) - math.log(0.25)) / 2
    assert losses["xe"].item() == pytest.approx((1 - a) * ce, rel=1e-6)


# --- MCL's slow weights -----------------------------------------------------------------------

def _linear(w: float):
    m = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(w)
    return m


def _set(m, w):
    with torch.no_grad():
        m.weight.fill_(w)


def _slow_weight(method):
    return method.slow["weight"].item()


def test_mcl_slow_weights_default_every_nth_step_of_the_run():
    method = get_method("xekl_mcl")(resolve_params("xekl_mcl", {"tau": 0.5, "N": 2}))
    student = _linear(1.0)
    method.setup(student, None)
    for step, (batch, w) in enumerate([(0, 2.0), (1, 4.0), (0, 8.0), (1, 16.0)]):
        _set(student, w)                     # what the optimiser step did
        method.after_step(student, step, batch)
        # updates after steps 2 and 4 of the run (1-based), whatever the epoch
        assert _slow_weight(method) == {0: 1.0, 1: 2.5, 2: 2.5, 3: 9.25}[step]
    evaluated = method.eval_model(student)
    assert evaluated.weight.item() == 9.25 and student.weight.item() == 16.0


def test_mcl_slow_weights_compat_alias_epoch_counter_and_no_restore():
    method = get_method("xekl_mcl")(resolve_params("xekl_mcl", {"tau": 0.5, "N": 2}), FG)
    student = _linear(1.0)
    method.setup(student, None)
    _set(student, 2.0)                       # shares memory: the slow weights move too
    assert _slow_weight(method) == 2.0
    # j = batch index within the epoch: updates at j = 0, 2, ...
    for step, (batch, w, slow) in enumerate([(0, 2.0, 2.0), (1, 4.0, 2.0), (2, 8.0, 5.0),
                                             (0, 16.0, 10.5)]):
        _set(student, w)
        method.after_step(student, step, batch)
        assert _slow_weight(method) == slow
    evaluated = method.eval_model(student)
    assert evaluated is student and student.weight.item() == 10.5   # training goes on from slow


def test_mcl_integer_buffers_follow_fast_weights_by_default():
    for compat, dtype in ((None, torch.int64), (FG, torch.float32)):
        method = get_method("xekl_mcl")(resolve_params("xekl_mcl", {"N": 1}), compat)
        bn = torch.nn.BatchNorm1d(2)
        method.setup(bn, None)
        bn.num_batches_tracked += 10
        method.after_step(bn, 0, 0)
        assert method.slow["num_batches_tracked"].dtype == dtype
        if compat is None:
            assert method.slow["num_batches_tracked"].item() == 10


# --- contrastive ------------------------------------------------------------------------------

def test_relational_cd_by_hand_sum_in_both_modes_and_mean_on_request():
    fs = torch.tensor([[1.0, 0.0], [0.0, 3.0]])            # S = I after normalisation
    ft = torch.tensor([[2.0, 0.0, 0.0], [5.0, 0.0, 0.0]])  # T = all ones (another width)
    # each row: KL((1/2, 1/2) || (e, 1)/(1+e)) = ln((1+e)/2) - 1/2; summed over the 2 rows
    row = math.log((1 + E) / 2) - 0.5
    assert relational_cd(fs, ft).item() == pytest.approx(2 * row, rel=1e-6)
    assert relational_cd(fs, ft, compat=FG).item() == pytest.approx(2 * row, rel=1e-6)
    assert relational_cd(fs, ft, mean=True).item() == pytest.approx(row, rel=1e-6)
    assert relational_cd(fs, fs * 7).item() == pytest.approx(0.0, abs=1e-7)


def _relational_by_numpy(fs, ft):
    """SimpleContrastLoss with numpy, row by row: sum_i KL(softmax(T_i) || softmax(S_i))."""
    def similarity(f):
        f = np.asarray(f, dtype=np.float64)
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        return f @ f.T
    total = 0.0
    for s_row, t_row in zip(similarity(fs), similarity(ft)):
        total += _kl(_softmax(list(t_row)), _softmax(list(s_row)))
    return total


def test_relational_cd_three_samples_against_numpy():
    fs = [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]]
    ft = [[0.0, 1.0], [2.0, 1.0], [-1.0, 0.5]]
    expected = _relational_by_numpy(fs, ft)
    assert expected > 0.05                                  # a batch that does cost something
    got = relational_cd(torch.tensor(fs), torch.tensor(ft))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert relational_cd(torch.tensor(fs), torch.tensor(ft), mean=True).item() == pytest.approx(
        expected / 3, rel=1e-5)


def test_cd_default_is_the_authors_magnitude_and_older_plans_run_as_planned():
    """Default cd: 0.1 CE + 10 x the relational loss summed over the batch (the authors'
    magnitude), identical to compat; params of a plan older than `relational_mean` lack it:
    the default then ran the mean, compat the sum."""
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    ft = torch.randn(4, 6)
    student = _FeatNet()
    feats = student.body(x).detach().numpy()
    summed = _relational_by_numpy(feats, ft.numpy())
    params = resolve_params("cd")
    assert params["relational_mean"] is False
    older = {k: v for k, v in params.items() if k != "relational_mean"}
    cases = [(params, None, summed), (params, FG, summed),
             (older, None, summed / 4), (older, FG, summed)]
    for p, compat, relational in cases:
        _, losses, _ = get_method("cd")(p, compat).forward_train(
            student, x, y, {"teacher_features": ft})
        assert losses["cd"].item() == pytest.approx(10 * relational, rel=1e-5), (compat, p)
    default = get_method("cd")(params).forward_train(student, x, y, {"teacher_features": ft})[1]
    compat = get_method("cd")(params, FG).forward_train(student, x, y, {"teacher_features": ft})[1]
    assert torch.equal(default["cd"], compat["cd"]) and torch.equal(default["xe"], compat["xe"])


def test_crd_nce_loss_by_hand():
    # n_data 2, one negative: Pn m = 1/2; D1 = .5/(.5+.5), D0 = .5/(.5+.5)
    assert crd_nce_loss(torch.tensor([[0.5, 0.5]]), 2).item() == pytest.approx(2 * math.log(2),
                                                                              rel=1e-5)
    # the batch is averaged; a sharper positive costs less
    two = crd_nce_loss(torch.tensor([[0.5, 0.5], [10.0, 0.0]]), 2).item()
    expected = (2 * math.log(2) - math.log(10 / 10.5) - math.log(0.5 / 0.5)) / 2
    assert two == pytest.approx(expected, rel=1e-5)


def test_crd_memory_bank_negatives_and_state():
    torch.manual_seed(0)
    params = resolve_params("crd", {"nce_k": 10_000, "feat_dim": 4})
    method = get_method("crd")(params)
    student = _FeatNet()
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    method.setup(student, SetupContext(y, 3, {"teacher_features": 5}, 0))
    assert method.nce_k == 3               # capped: class 0 has 3 other-class samples
    idx = torch.tensor([0, 3, 5])
    contrast = method.contrast_idx(idx, y[idx])
    assert contrast[:, 0].tolist() == [0, 3, 5]
    for row, label in zip(contrast, y[idx]):
        assert all(y[j] != label for j in row[1:].tolist())
    before = method.module.memory_s.clone()
    _, losses, _ = method.forward_train(student, torch.randn(3, 3), y[idx],
                                        {"teacher_features": torch.randn(3, 5)}, idx)
    assert torch.isfinite(losses["crd"]) and method.module.z.min() > 0
    changed = (method.module.memory_s != before).any(1)
    assert changed.tolist() == [True, False, False, True, False, True]   # only the batch's slots
    assert torch.allclose(method.module.memory_s[idx].norm(dim=1), torch.ones(3))
    state = method.state_dict()
    fresh = get_method("crd")(params)
    fresh.setup(student, SetupContext(y, 3, {"teacher_features": 5}, 0))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.module.memory_t, method.module.memory_t)


def test_crd_scores_whole_bank_and_gathered_agree():
    from benchmark.methods.crd import CRDModule
    memory, v = torch.randn(50, 8), torch.randn(4, 8)
    small = torch.randint(0, 50, (4, 10))        # 50 <= 8 x 10: one matmul over the bank
    large = torch.randint(0, 50, (4, 3))         # 50 > 8 x 3: gathered slots
    for idx in (small, large):
        expected = torch.stack([memory[row] @ vec for row, vec in zip(idx, v)])
        assert torch.allclose(CRDModule.scores(memory, v, idx), expected, atol=1e-5)
    # the bank moves in place after scoring: backward must still work, on both paths
    for n_data, k in ((40, 6), (400, 6)):
        torch.manual_seed(0)
        module = CRDModule(5, 7, 4, n_data, 0.07, 0.5)
        idx = torch.arange(3)
        contrast = torch.cat([idx[:, None], torch.randint(3, n_data, (3, k))], 1)
        f_s = torch.randn(3, 5, requires_grad=True)
        module(f_s, torch.randn(3, 7), idx, contrast).backward()
        assert f_s.grad.abs().sum() > 0 and module.embed_t.weight.grad is not None


class _FeatNet(torch.nn.Module):
    """The timm split the contrastive methods use, on 3-d inputs."""

    def __init__(self):
        super().__init__()
        self.body, self.fc = torch.nn.Linear(3, 4), torch.nn.Linear(4, 3)

    def forward_features(self, x):
        return self.body(x)

    def forward_head(self, x, pre_logits=False):
        return x if pre_logits else self.fc(x)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_cd_losses_by_weight():
    params = resolve_params("cd")
    method = get_method("cd")(params, FG)
    student = _FeatNet()
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    ft = torch.randn(4, 6)
    logits, losses, _ = method.forward_train(student, x, y, {"teacher_features": ft})
    assert torch.allclose(logits, student(x))
    assert losses["xe"].item() == pytest.approx(
        0.1 * torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert losses["cd"].item() == pytest.approx(
        10 * relational_cd(student.body(x), ft, FG).item(), rel=1e-5)
