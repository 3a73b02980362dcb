"""Transferability and complementarity scores: the math, vectorised, on in-memory arrays.

Every function here is pure (arrays in, numbers out) and documented with its definition, so
that tests can check it against an independent computation (tests/test_predictors.py).

Per model, from its pooled features F [N, D] (or logits [N, Z]) on a labelled split (y [N]):
- `tmi`: TMI (Xu & Kang, ICCV 2023), the conditional entropy H(F | Y) of the features given the
  label, i.e. the intra-class feature variance, with the paper's k-nearest-neighbour
  (Kozachenko-Leonenko) estimator per class, as in the official code (snudatalab/TMI).
- `logme`: LogME (You et al., ICML 2021), the mean over classes of the maximised log evidence of
  a Bayesian linear model from the features to each class's one-hot target, per sample.
- `hscore`: H-score (Bao et al., ICIP 2019), tr(cov(f)^+ cov(E[f | y])).
- `leep_nce_terms`: per-sample terms of LEEP (Nguyen et al., ICML 2020) and NCE (Tran et al.,
  ICCV 2019) of the model's classifier for the split's labels; their means are LEEP and NCE.
Per pair of models:
- `linear_cka`: linear CKA (Kornblith et al., ICML 2019) of two feature matrices.
- `kappa_from_flips`: Cohen's kappa of the two models' correctness, from the flip counts of
  `benchmark.measures.stats` (agreement = 1 - rho_pos - rho_neg).
"""
import functools
import math

import numpy as np
import torch
from scipy import sparse
from scipy.linalg import solve_triangular
from scipy.special import digamma, gammaln

# ---------------------------------------------------------------- labels


def class_slices(labels, num_classes=None):
    """(order, bounds): a sample order grouping samples by class, class c being
    order[bounds[c]:bounds[c + 1]]. num_classes defaults to labels.max() + 1."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    order = np.argsort(labels, kind="stable")
    return order, np.searchsorted(labels[order], np.arange(num_classes + 1))


def class_sums(x, slices) -> np.ndarray:
    """[num_classes, D]: the sum of x's rows [N, D] in each class (0 for an empty class), as
    one sparse product (the class indicator matrix is the CSR form of `slices` as it stands)."""
    order, bounds = slices
    indicator = sparse.csr_array((np.ones(len(order), x.dtype), order, bounds),
                                 shape=(len(bounds) - 1, len(x)))
    return np.asarray(indicator @ x)


# ---------------------------------------------------------------- TMI

TMI_K, TMI_NORM, TMI_MIN_DIST = 3, "max", 1.0     # the official defaults


def tmi(features, labels, k: int = TMI_K, norm: str = TMI_NORM, min_dist: float = TMI_MIN_DIST,
        slices=None) -> float:
    """TMI: the intra-class feature entropy H(F | Y) in nats, higher = more transferable.

    Per class c with n_c samples, the Kozachenko-Leonenko estimate
        h_c = -psi(k) + psi(n_c) + log c_d + d / n_c * sum_i log(2 eps_i),
    eps_i = the distance from sample i to its k-th nearest other sample of the class (`norm`
    'max': Chebyshev, c_d = 1; 'euclidean': c_d = the volume of the unit d-ball), floored at
    `min_dist`. As the official `TMI`: classes 0..max(y); a class of 0 or 1 samples has h_c = 0;
    a class of 2..k samples (no k-th neighbour) has h_c = inf and is left out; the score is the
    mean over the remaining classes of n_c / N * h_c. Centering the features (as the official
    code does) moves no distance, so it is skipped.
    """
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    n, d = x.shape
    order, bounds = class_slices(labels) if slices is None else slices
    if norm == "max":
        p, log_c_d = math.inf, 0.0
    elif norm == "euclidean":
        p, log_c_d = 2.0, d / 2 * math.log(math.pi) - gammaln(d / 2 + 1)
    else:
        raise ValueError(f"norm must be 'max' or 'euclidean', got {norm!r}")
    sizes = np.diff(bounds)
    sum_log = np.zeros(len(sizes))
    grouped = x[torch.as_tensor(order)]
    for size in np.unique(sizes[sizes > k]):
        classes = np.flatnonzero(sizes == size)
        # [classes, size, d]: the classes of this size side by side (few distinct sizes)
        rows = torch.as_tensor(bounds[classes][:, None] + np.arange(size)[None, :])
        block = grouped[rows]
        dist = torch.cdist(block, block, p=p, compute_mode="donot_use_mm_for_euclid_dist")
        eps = torch.kthvalue(dist, k + 1, dim=-1).values        # self is the nearest, at 0
        sum_log[classes] = torch.log(2 * eps.clamp(min=min_dist)).double().sum(-1).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -digamma(k) + digamma(np.maximum(sizes, 1)) + log_c_d + d / sizes * sum_log
    h = np.where(sizes <= 1, 0.0, np.where(sizes <= k, np.inf, h))
    finite = np.isfinite(h)
    return float(np.mean(h[finite] * sizes[finite] / n)) if finite.any() else math.nan


# ---------------------------------------------------------------- LogME

# tol: relative change of alpha / beta; guard: added to m^T m and ||y - F m||^2 in the updates
# (the official code adds 1e-5, which keeps alpha finite but stops short of the maximum when a
# class's best model is w = 0, alpha -> inf; 1e-30 only rules out a division by zero)
LOGME_TOL, LOGME_MAX_ITER, LOGME_GUARD = 1e-6, 100, 1e-30


def logme_from_moments(gram, class_sums, class_counts, num_samples: int,
                       tol: float = LOGME_TOL, max_iter: int = LOGME_MAX_ITER,
                       guard: float = LOGME_GUARD) -> float:
    """LogME from sufficient statistics: gram = F^T F [D, D], class_sums = F^T Y [D, C] (the
    feature sum of each class), class_counts [C] (= y_c^T y_c for one-hot targets).

    For each class c, the target y_c = 1[y = c] is modelled as y_c = F w + noise, w ~ N(0, I/alpha),
    noise ~ N(0, I/beta). The evidence
        L(alpha, beta) = D/2 log alpha + N/2 log beta - 1/2 log det(alpha I + beta F^T F)
                         - beta/2 ||y_c - F m||^2 - alpha/2 ||m||^2 - N/2 log 2 pi,
        m = beta (alpha I + beta F^T F)^-1 F^T y_c,
    is maximised over (alpha, beta) at the fixed point of LogME's updates (alpha = gamma / m^T m,
    beta = (N - gamma) / ||y - F m||^2, gamma = sum_i beta s_i / (alpha + beta s_i), s the
    eigenvalues of F^T F), found to a relative change of alpha / beta below `tol` (secant steps
    on log(alpha / beta), vectorised over classes), and compared with its limit for
    alpha -> inf (w = 0, beta = N / ||y_c||^2): the larger is the class's maximum evidence.
    LogME = mean over the classes present of L / N.

    Differences from the official code (thuml/LogME), on purpose, so that the number is the
    maximum evidence: the evidence is evaluated at the final (alpha, beta) (the official final
    line mixes them with the previous step's m); log det runs over all D eigenvalues, zero ones
    included (the official code drops null directions from log det but keeps D/2 log alpha, not
    the evidence when N < D); the update guards are 1e-30, not 1e-5 (see LOGME_GUARD); the limit
    alpha -> inf counts (the official iteration stops at a finite alpha there); and absent
    classes are left out (the official code gives them a huge evidence). With N > D, full-rank
    features and a signal in every class, both agree to ~1e-8: the evidence is flat at its
    maximum, so a relative tolerance of 1e-3 on alpha / beta moves it by ~1e-9; 1e-6 is used.
    """
    sigma, vectors = np.linalg.eigh(np.asarray(gram, np.float64))
    proj = vectors.T @ np.asarray(class_sums, np.float64)
    return _logme_eigen(np.clip(sigma, 0.0, None), proj, np.asarray(class_counts, np.float64),
                        num_samples, tol, max_iter, guard)


def _logme_eigen(sigma, proj, counts, n, tol=LOGME_TOL, max_iter=LOGME_MAX_ITER,
                 guard=LOGME_GUARD) -> float:
    """LogME from the eigenvalues sigma [D] of F^T F and proj = V^T F^T Y [D, C]."""
    d = len(sigma)
    n = float(n)
    live = sigma > sigma.max(initial=0.0) * 1e-12
    present = counts > 0
    s = sigma[live]
    x2 = proj[live][:, present] ** 2 / s[:, None]                      # (U^T y_c)^2
    yy = counts[present]
    res_x2 = np.clip(yy - x2.sum(0), 0.0, None)
    # The fixed point of t -> alpha(t) / beta(t) (MacKay's updates, as LogME iterates them),
    # found as the root of g(u) = log(alpha / beta at t = e^u) - u by the secant method from the
    # official start alpha = beta = 1 (the plain update is its first step and the fallback when a
    # secant step is not finite or longer than a factor e^8): 5-8 evaluations where the plain
    # iteration takes 15-20 to a relative change of 1e-3.
    u = np.zeros(len(yy))
    u_prev = g_prev = None
    active = np.ones(len(yy), bool)
    for _ in range(max_iter):
        gamma, m2, res2 = _logme_moments(s, x2, res_x2, np.exp(u))
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.log(gamma / (m2 + guard) * (res2 + guard) / (n - gamma)) - u
        active &= np.isfinite(g) & (np.abs(g) > math.log1p(tol))
        if not active.any():
            break
        step = g
        if g_prev is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                secant = -g * (u - u_prev) / (g - g_prev)
            step = np.where(np.isfinite(secant) & (np.abs(secant) < 8.0), secant, g)
        u_prev, g_prev = u, g
        u = np.where(active, u + step, u)
    t = np.exp(u)
    gamma, m2, res2 = _logme_moments(s, x2, res_x2, t)
    alpha, beta = gamma / (m2 + guard), (n - gamma) / (res2 + guard)
    t = alpha / beta
    # log det(alpha I + beta F^T F) = D log beta + sum_i log(t + sigma_i)
    log_det = d * np.log(beta) + np.log(t[None, :] + sigma[:, None]).sum(0)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2 - beta / 2 * res2
                - alpha / 2 * m2 - n / 2 * math.log(2 * math.pi))
    limit = n / 2 * np.log(n / yy) - n / 2 - n / 2 * math.log(2 * math.pi)   # alpha -> inf
    return float(np.mean(np.maximum(evidence, limit) / n))


def _logme_moments(s, x2, res_x2, t):
    """gamma, m^T m and ||y - F m||^2 per class at alpha / beta = t, in the eigenbasis of F^T F
    (s [k] its non-zero eigenvalues, x2 [k, C] the squared projections of the targets on the
    left singular vectors, res_x2 [C] the targets' squared norm outside them)."""
    r = 1.0 / (s[:, None] + t[None, :])
    q = x2 * r
    q *= r
    gamma = s @ r
    m2 = s @ q
    res2 = t * t * q.sum(0) + res_x2
    return gamma, m2, res2


def logme_hscore_from_moments(scatter, mean, class_sums, class_counts, num_samples: int,
                              **options) -> tuple[float, float]:
    """(LogME, H-score) from the centred scatter S = sum_i (f_i - mu)(f_i - mu)^T, the mean mu,
    class sums and counts, with one eigendecomposition: that of F^T F = S + N mu mu^T (LogME's),
    H-score through Sherman-Morrison, S^-1 = G^-1 + N G^-1 mu mu^T G^-1 / (1 - N mu^T G^-1 mu).
    Falls back to `hscore_from_moments` (pseudo-inverse semantics) when F^T F is numerically
    singular. Same numbers as `logme_from_moments` and `hscore_from_moments`."""
    scatter = np.asarray(scatter, np.float64)
    mean = np.asarray(mean, np.float64)
    sums = np.asarray(class_sums, np.float64)
    counts = np.asarray(class_counts, np.float64)
    n = float(num_samples)
    sigma, vectors = np.linalg.eigh(scatter + n * np.outer(mean, mean))
    sigma = np.clip(sigma, 0.0, None)
    proj = vectors.T @ sums
    logme_value = _logme_eigen(sigma, proj, counts, n, **options)
    present = counts > 0
    q = vectors.T @ mean
    denominator = 1.0 - n * (q * q / np.where(sigma > 0, sigma, np.inf)).sum()
    if len(sigma) == 0 or sigma.min() <= sigma.max() * 1e-10 or denominator <= 1e-12:
        return logme_value, hscore_from_moments(scatter, sums, counts, mean)
    root = np.sqrt(sigma)[:, None]
    p = (proj[:, present] / counts[present] - q[:, None]) / root       # G^-1/2 (mu_c - mu)
    qq = q / root[:, 0]
    h = counts[present] * ((p * p).sum(0) + n * (qq @ p) ** 2 / denominator)
    return logme_value, float(h.sum())


def logme(features, labels, **options) -> float:
    """LogME of features [N, D] for integer labels [N] (classes 0..max(y)); see
    `logme_from_moments`."""
    f = np.asarray(features, np.float64)
    onehot = np.eye(int(np.max(labels)) + 1)[np.asarray(labels)]
    return logme_from_moments(f.T @ f, f.T @ onehot, onehot.sum(0), len(f), **options)


# ---------------------------------------------------------------- H-score

HSCORE_RCOND = 1e-15    # numpy's pinv default, as the official code


def hscore_from_moments(scatter, class_sums, class_counts, mean,
                        rcond: float = HSCORE_RCOND) -> float:
    """H-score tr(cov(f)^+ cov(E[f | y])) from sufficient statistics: scatter = sum_i (f_i - mu)
    (f_i - mu)^T [D, D], class_sums [D, C], class_counts [C], mean mu [D].

    Both covariances share the 1 / (N - 1) of the official `getCov`, which cancels:
    H = sum_c n_c (mu_c - mu)^T S^+ (mu_c - mu) with S the scatter. S^+ is the pseudo-inverse
    with numpy's relative cut-off `rcond` (a Cholesky solve where S is numerically positive
    definite, which is the same number, faster).
    """
    scatter = np.asarray(scatter, np.float64)
    counts = np.asarray(class_counts, np.float64)
    present = counts > 0
    centred = (np.asarray(class_sums, np.float64)[:, present] / counts[present]
               - np.asarray(mean, np.float64)[:, None]) * np.sqrt(counts[present])
    try:
        chol = np.linalg.cholesky(scatter)
    except np.linalg.LinAlgError:      # not positive definite: the pseudo-inverse
        values, vectors = np.linalg.eigh(scatter)
        keep = values > rcond * values.max(initial=0.0)
        proj = vectors[:, keep].T @ centred
        return float(((proj**2) / values[keep, None]).sum())
    return float((solve_triangular(chol, centred, lower=True) ** 2).sum())


def hscore(features, labels, **options) -> float:
    """H-score of features [N, D] for integer labels [N]; see `hscore_from_moments`."""
    f = np.asarray(features, np.float64)
    mean = f.mean(0)
    onehot = np.eye(int(np.max(labels)) + 1)[np.asarray(labels)]
    centred = f - mean
    return hscore_from_moments(centred.T @ centred, f.T @ onehot, onehot.sum(0), mean, **options)


# ---------------------------------------------------------------- LEEP and NCE


def leep_nce_terms(logits, labels, slices=None):
    """Per-sample LEEP and NCE terms of a classifier's logits [N, Z] for labels y [N].

    With theta_i = softmax(logits_i) and, over the split, the empirical joint
    P(y, z) = 1/N sum_{i: y_i = y} theta_iz and P(y | z) = P(y, z) / P(z):
        leep_i = log sum_z theta_iz P(y_i | z)          (LEEP = mean_i leep_i)
    and with the hard prediction z_i = argmax_z logits_iz and count-based P(y | z):
        nce_i = log P(y_i | z_i)                        (NCE = -H(Y | Z) = mean_i nce_i)
    Returns (leep_i, nce_i, correct_i = [z_i == y_i]) as float64, float64, bool arrays.
    The label spaces need not match (Z may differ from the number of labels).
    """
    logits = np.ascontiguousarray(logits, np.float32)
    labels = np.asarray(labels)
    order, bounds = class_slices(labels) if slices is None else slices
    theta = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    n, z = theta.shape
    num_y = len(bounds) - 1
    sums = class_sums(theta, (order, bounds)).astype(np.float64)
    totals = sums.sum(0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):   # P(y | z) [Y, Z]; 1/N cancels
        cond = np.where(totals > 0, sums / totals, 0.0).astype(np.float32)
    eep = np.einsum("iz,iz->i", theta, cond[labels], dtype=np.float64)
    pred = logits.argmax(1)
    counts = np.bincount(labels * z + pred, minlength=num_y * z).reshape(num_y, z)
    nce = np.log(counts[labels, pred] / counts.sum(0)[pred])
    return np.log(eep), nce, pred == labels


def leep(logits, labels) -> float:
    return float(leep_nce_terms(logits, labels)[0].mean())


def nce(logits, labels) -> float:
    return float(leep_nce_terms(logits, labels)[1].mean())


# ---------------------------------------------------------------- pairs


def masked_means(values, masks):
    """[M, K]: mean of values[m] over the samples where masks[k] holds (nan for an empty mask).
    values [M, N] floats, masks [K, N] bools: one matrix product."""
    masks = np.asarray(masks, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(values, np.float64) @ masks.T) / masks.sum(1)[None, :]


def kappa_from_flips(pos, neg, acc_t, acc_s, num_samples):
    """Cohen's kappa of two models' correctness from their flips: pos = samples only the teacher
    gets right, neg = samples only the student gets right, acc_* in [0, 1]. Observed agreement
    p_o = 1 - (pos + neg) / N, chance agreement p_e = a_t a_s + (1 - a_t)(1 - a_s),
    kappa = (p_o - p_e) / (1 - p_e); nan where p_e = 1 (both constant and equal)."""
    p_o = 1.0 - (np.asarray(pos, np.float64) + np.asarray(neg, np.float64)) / num_samples
    acc_t, acc_s = np.asarray(acc_t, np.float64), np.asarray(acc_s, np.float64)
    p_e = acc_t * acc_s + (1 - acc_t) * (1 - acc_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p_e < 1.0, (p_o - p_e) / (1.0 - p_e), np.nan)


def centred(features) -> np.ndarray:
    f = np.asarray(features, np.float32)
    return f - f.mean(0, dtype=np.float64).astype(np.float32)


def linear_cka(x, y) -> float:
    """Linear CKA of feature matrices x [N, Dx], y [N, Dy] (same samples):
    ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), with Xc, Yc the column-centred features."""
    xc, yc = centred(x).astype(np.float64), centred(y).astype(np.float64)
    num = np.linalg.norm(yc.T @ xc) ** 2
    return float(num / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


@functools.lru_cache(maxsize=4)
def _triu(n: int):
    rows, cols = np.triu_indices(n)
    return rows * n + cols, rows != cols


def packed_gram(x) -> np.ndarray:
    """The centred Gram matrix Xc Xc^T [n, n] of x [n, D], normalised to unit Frobenius norm and
    packed as its upper triangle (off-diagonal entries times sqrt 2), so that the dot product of
    two packed grams is their Frobenius inner product: linear CKA (the Gram form
    <Kx, Ky> / (||Kx|| ||Ky||) of the same number as `linear_cka`)."""
    xc = centred(x)
    flat, off_diagonal = _triu(len(xc))
    packed = (xc @ xc.T).ravel()[flat]
    packed[off_diagonal] *= np.float32(math.sqrt(2.0))
    norm = np.linalg.norm(packed.astype(np.float64))
    return packed / np.float32(norm) if norm > 0 else packed
