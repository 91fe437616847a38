"""What `test` measures (`Evaluation`), and the module that measures it on every evaluation batch (`Evaluator`).

Streaming measures (accuracy per split, membership-inference attacks) are torchmetrics metrics fed by
`Evaluator.update(split, logits, labels, indices)`; their states synchronise across processes and
per-sample states are put back in sample order, so DDP gives the numbers of a single process.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from benchmark.metrics.accuracy import nonfinite_count, split_metrics
from benchmark.metrics.mia import attack_classes


@dataclass
class Evaluation:
    """Which measures `fit` and `test` report besides the accuracy on every split.

    Args:
        mia: the membership-inference attacks of `benchmark/metrics/mia.py` (`mia/svm_asr`, `mia/efficacy` and
            SalUn's four other features, `mia/asr_golatkar`, `mia/asr_lr`, `mia/scrub_loss`, `mia/simple`,
            `mia/loss_auc`), each computed as its published code does.
        ulira: U-LiRA (`mia/ulira_acc`, `mia/ulira_auc`, `benchmark/audits/ulira.py`): trains 2·shadows + 1 models
            from scratch (once per request, cached) and runs the method on `ulira_shadows` of them.
        neurips: the NeurIPS 2023 unlearning challenge's forgetting quality (`mia/neurips_f`, `mia/neurips_score`,
            `mia/neurips_models`, `benchmark/audits/challenge.py`) from U-LiRA's shadow models (trained for it when
            `ulira` is off; at least 3 of each kind, the challenge used 512).
        ulira_shadows: unlearned and retrained shadow models each (Hayes et al. use many more; 16 is
            feasible for `digits` on a CPU).
        relearn: relearn time `rt/epochs` (and `rt/reached`), seed 002 §V-A.
        relearn_cap: most relearning epochs ("> cap" when not reached).
        relearn_samples: random training samples per relearning epoch.
        relearn_optimizer: optimizer of the relearning: `adam` or `sgd` at `relearn_lr`, or `recipe`: the original's
            pretraining recipe's optimizer, learning rate, momentum and weight decay (seed 002's reading).
        relearn_lr: its learning rate (`adam` / `sgd`).
        relearn_split: the split whose accuracy relearning must regain, up to the original's on it: `forget` (D_f)
            or, in a class scenario, `test_forget` (the forgotten classes' test images, seed 002's A_Df).
        representations: `dist/weights` (L2 distance to the original's weights; `dist/weights_retrain` to
            Retrain's, when a Retrain run of the same request and seed is saved), `forget/feature_norm`,
            `retain/feature_norm` (penultimate features) and `forget/pattern` (Streisand pattern score).
        curves: accuracy on forget / retain / test before unlearning and after every epoch (in the
            record's `curves`, not counted in the cost) and seed 003's `{split}/volatility`, `{split}/volatility_table1`
            and `{split}/mean_abs_delta` from them.
        figures: PNG figures next to the result record (weight distance, prediction distribution,
            confusion, layer-wise CKA on forget and retain, t-SNE).
        mia_attacks: the attacks to compute, by name (None: all of them).
        mia_samples: the SVM attacks keep the first `mia_samples` rows of retain and of test (a prefix, never a
            random draw); None: their published rows. The suites cap it to bound an RBF SVM's quadratic cost.
        seed: seed of the attacks that draw (`mia/scrub_loss`, `mia/simple`) and of the relearning.
    """

    mia: bool = True
    mia_attacks: list[str] | None = None
    mia_samples: int | None = None
    ulira: bool = False
    neurips: bool = False
    ulira_shadows: int = 16
    relearn: bool = False
    relearn_cap: int = 100
    relearn_samples: int = 500
    relearn_optimizer: Literal["adam", "sgd", "recipe"] = "adam"
    relearn_lr: float = 1e-3
    relearn_split: Literal["forget", "test_forget"] = "forget"
    representations: bool = False
    curves: bool = False
    figures: bool = False
    seed: int = 0


class Evaluator(nn.Module):
    """Accuracy per split plus the per-sample metrics `evaluation` asks for.

    A model whose outputs are not finite (e.g. diverged gradient ascent) gets NaN for every measure of
    the splits where that happens — never an accuracy computed from NaN logits.
    """

    def __init__(self, splits: list[str], num_classes: int, evaluation: Evaluation | None = None) -> None:
        super().__init__()
        evaluation = evaluation or Evaluation()
        self.splits, self.evaluation = list(splits), evaluation
        """The splits in the order of the evaluation loaders; the measures asked for."""
        self.accuracy = split_metrics(splits, num_classes)
        self.nonfinite = nn.ModuleDict({split: nonfinite_count() for split in splits})
        wanted = attack_classes(evaluation.mia_attacks) if evaluation.mia else {}
        self.sample_metrics = nn.ModuleDict({name.replace("/", "__"): metric(seed=evaluation.seed, max_samples=evaluation.mia_samples) for name, metric in wanted.items()})

    def update(self, split: str, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.accuracy[split].update(logits, labels)
        self.nonfinite[split].update((~torch.isfinite(logits).all(dim=1)).sum())
        for metric in self.sample_metrics.values():
            metric.update(split, logits, labels, indices)

    def compute(self) -> dict[str, float]:
        """All values by their public names; every process must call it (it synchronises)."""
        broken = {split for split, count in self.nonfinite.items() if count.compute() > 0}
        results: dict[str, float] = {}
        for split, collection in self.accuracy.items():
            results.update({name: float(value) if split not in broken else math.nan for name, value in collection.compute().items()})
        if broken:
            return results | {key.replace("__", "/"): math.nan for key in self.sample_metrics}
        for values in self._attack_values():
            results.update({name: float(value) for name, value in values.items()})
        return results

    def _attack_values(self) -> list[dict[str, float]]:
        """Each attack's `compute()`; in one process, on a thread per torch thread (libsvm's fits release the GIL),
        the costliest first."""
        metrics = list(self.sample_metrics.values())
        workers = min(len(metrics), torch.get_num_threads())
        if workers < 2 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return [metric.compute() for metric in metrics]  # collectives keep one order in every process
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda metric: metric.compute(), sorted(metrics, key=lambda metric: -metric.work)))

    def reset(self) -> None:
        for metric in [*self.accuracy.values(), *self.nonfinite.values(), *self.sample_metrics.values()]:
            metric.reset()
