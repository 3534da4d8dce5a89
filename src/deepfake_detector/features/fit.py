"""Fitting heads on cached features, in seconds to minutes on a CPU.

- `fit_logistic`: L2 logistic regression on standardised features (UniversalFakeDetect's linear
  probe); C chosen on the validation split.
- `fit_mlp`: one hidden layer (ReLU, dropout), Adam, early stopping on the validation split.

Several training sources: every (source, class) group gets the same total weight in the loss,
which is balanced sampling in expectation without dropping or repeating images. Validation
scores each source separately and averages (a small source counts as much as a big one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepfake_detector.features.heads import FeatureHead

DEFAULT_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


@dataclass
class LabelledFeatures:
    """Features (n, d) with labels (n,) (0 real, 1 fake) and optional per-row source names."""

    x: np.ndarray
    y: np.ndarray
    sources: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64).reshape(-1)
        if self.sources is not None:
            self.sources = np.asarray(self.sources).reshape(-1)
        n = self.x.shape[0]
        if self.x.ndim != 2 or self.y.shape != (n,) or (self.sources is not None and len(self.sources) != n):
            raise ValueError(f"features {self.x.shape}, labels {self.y.shape}: lengths differ")
        if not np.isfinite(self.x).all():
            raise ValueError("features contain NaN/inf rows (unreadable images?): drop them before fitting")


def group_weights(labels: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
    """Per-row weights giving every (source, class) group the same total; mean weight 1."""
    labels = np.asarray(labels).reshape(-1)
    keys = (
        labels.astype(str) if sources is None else np.char.add(np.asarray(sources, str), labels.astype(str))
    )
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights * (len(labels) / weights.sum())


def validation_score(
    y: np.ndarray, logits: np.ndarray, sources: np.ndarray | None = None
) -> dict[str, float]:
    """ROC-AUC (mean of per-source AUCs when sources are given) and weighted log loss."""
    from sklearn.metrics import log_loss, roc_auc_score

    groups = (
        {"all": np.ones(len(y), bool)} if sources is None else {s: sources == s for s in np.unique(sources)}
    )
    aucs = {str(s): float(roc_auc_score(y[m], logits[m])) for s, m in groups.items() if len(set(y[m])) == 2}
    if not aucs:
        raise ValueError("validation split needs both classes")
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    loss = float(log_loss(y, probs, sample_weight=group_weights(y, sources), labels=[0, 1]))
    return {
        "auc": float(np.mean(list(aucs.values()))),
        "log_loss": loss,
        **{f"auc_{k}": v for k, v in aucs.items()},
    }


def _better(a: dict[str, float], b: dict[str, float] | None) -> bool:
    return b is None or (round(a["auc"], 4), -a["log_loss"]) > (round(b["auc"], 4), -b["log_loss"])


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6)
    return mean.astype(np.float32), std.astype(np.float32)


def fit_logistic(
    train: LabelledFeatures,
    val: LabelledFeatures,
    feature_set: str,
    encoder_id: str,
    cs: Sequence[float] = DEFAULT_CS,
) -> FeatureHead:
    """L2 logistic regression; C with the best validation AUC (ties: lower log loss)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = _standardiser(train.x)
    xt, xv = (train.x - mean) / std, (val.x - mean) / std
    weights = group_weights(train.y, train.sources)
    best, best_score, tried = None, None, {}
    for c in cs:
        model = LogisticRegression(C=float(c), max_iter=3000).fit(xt, train.y, sample_weight=weights)
        score = validation_score(val.y, model.decision_function(xv), val.sources)
        tried[str(c)] = score["auc"]
        if _better(score, best_score):
            best, best_score, best_c = model, score, float(c)
    assert best is not None and best_score is not None
    layers = [(best.coef_.T.astype(np.float32), best.intercept_.astype(np.float32))]
    info = {"C": best_c, "val": best_score, "auc_by_C": tried, **_train_facts(train)}
    return FeatureHead("logistic", mean, std, layers, feature_set, encoder_id, info)


def fit_mlp(
    train: LabelledFeatures,
    val: LabelledFeatures,
    feature_set: str,
    encoder_id: str,
    hidden: int = 256,
    dropout: float = 0.2,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    max_epochs: int = 200,
    patience: int = 15,
    seed: int = 0,
) -> FeatureHead:
    """One hidden layer MLP (torch, CPU), stopped when the validation score stops improving."""
    import torch

    torch.manual_seed(seed)
    mean, std = _standardiser(train.x)
    xt = torch.from_numpy((train.x - mean) / std)
    yt = torch.from_numpy(train.y.astype(np.float32))
    wt = torch.from_numpy(group_weights(train.y, train.sources).astype(np.float32))
    xv = (val.x - mean) / std
    net = torch.nn.Sequential(
        torch.nn.Linear(xt.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, 1),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best_state, best_score, best_epoch = None, None, 0
    for epoch in range(max_epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(xt[idx]).squeeze(1), yt[idx], wt[idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            score = validation_score(val.y, net(torch.from_numpy(xv)).squeeze(1).numpy(), val.sources)
        if _better(score, best_score):
            best_score, best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch + 1 - best_epoch >= patience:
            break
    assert best_state is not None
    layers = [
        (best_state[f"{i}.weight"].numpy().T.copy(), best_state[f"{i}.bias"].numpy().copy()) for i in (0, 3)
    ]
    info = {"hidden": hidden, "epochs": best_epoch, "val": best_score, **_train_facts(train)}
    return FeatureHead("mlp", mean, std, layers, feature_set, encoder_id, info)


def _train_facts(train: LabelledFeatures) -> dict[str, object]:
    sources = ["all"] if train.sources is None else sorted(map(str, np.unique(train.sources)))
    counts = {}
    for s in sources:
        mask = np.ones(len(train.y), bool) if train.sources is None else train.sources.astype(str) == s
        counts[s] = {"real": int((train.y[mask] == 0).sum()), "fake": int((train.y[mask] == 1).sum())}
    return {"n_train": int(len(train.y)), "train_counts": counts}
