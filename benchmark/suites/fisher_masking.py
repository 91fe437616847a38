"""Seed 003 (*Unlearning with Fisher Masking*): its class-0 table as a CPU variant on Fashion-MNIST — accuracy on the
forgotten class's and the other classes' test images right after masking (epoch 0, no fine-tuning: §4.1's first
block) and after T epochs of fine-tuning, with the volatility of their curves — from an original trained with its
multistep schedule (`fashion_mnist_multistep`); `--dataset digits --seeds '[0]'` is a quick check of the same grid.
Figs. 1, 3, 4 and 5 are its setting with other rows (`fishermask_fig1`, …), sharing its records; Fig. 2 is its curves.
"""

from __future__ import annotations

from dataclasses import replace

from benchmark.metrics.evaluator import Evaluation
from benchmark.suites.base import MIA_SAMPLES, SUITES, Row, Suite

CURVES = Evaluation(mia=True, mia_samples=MIA_SAMPLES, relearn=True, relearn_split="test_forget", relearn_optimizer="recipe", curves=True)
"""Per-epoch test_forget / test_retain curves (epoch 0 right after masking) for the volatility; relearn time and the
attacks are additions (the paper's Appendix C is missing)."""
R = {"ratio": 0.04}
"""Seed 003's R for MNIST (0.04), the closer of its two values to Fashion-MNIST."""
FINETUNE = Row("Finetune", "RandomMask", {"ratio": 0.0})
"""Plain fine-tuning with the masking methods' schedule: RandomMask at R = 0 masks nothing."""

SUITES.register("fishermask_table1")(Suite(
    title="Seed 003 Table 1 / Fig. 2, CPU variant: forget class 0 by masking the top R units, then fine-tuning T epochs",
    dataset="fashion_mnist",
    ks=(),
    classes=((0,),),
    arch="narrow_cnn_bn",
    recipe="fashion_mnist_multistep",
    rows=(
        Row("Original", "Original"),
        Row("Retrain", "Retrain"),
        FINETUNE,
        Row("RandomMask", "RandomMask", R),
        Row("ActivationMask", "ActivationMask", R),
        Row("GradMask", "GradMask", R),
        Row("TFIDF", "TFIDF", R),
        Row("FisherMask", "FisherMask", R),
        Row("FisherNoise", "Fisher"),
        Row("Influence", "Influence"),
        Row("FisherMask, no fine-tuning", "FisherMask", {**R, "finetune": False}),
        Row("ActivationMask, no fine-tuning", "ActivationMask", {**R, "finetune": False}),
    ),
    evaluation=CURVES,
    main_metrics=("test_forget/acc", "test_retain/acc"),
    companion_metrics=("test_forget/volatility", "test_retain/volatility", "test_forget/mean_abs_delta", "rt/epochs", "mia/svm_asr", "cost/seconds"),
))

TABLE1 = SUITES.get("fishermask_table1")

SUITES.register("fishermask_fig1")(replace(
    TABLE1,
    title="Seed 003 Fig. 1, CPU variant: the forgotten class's test accuracy while Finetune, Influence and FisherMask unlearn it",
    rows=(Row("Original", "Original"), FINETUNE, Row("Influence", "Influence"), Row("FisherMask", "FisherMask", R)),
    records="fishermask_table1",
))

SUITES.register("fishermask_fig3")(replace(
    TABLE1,
    title="Seed 003 Fig. 3, CPU variant: ActivationMask and FisherMask with limited data — D_f alone without fine-tuning, "
          "and 50 D_r images for scoring and fine-tuning",
    rows=(
        Row("Original", "Original"),
        Row("ActivationMask, D_f only", "ActivationMask", {**R, "score_on": "forget", "finetune": False}),
        Row("FisherMask, D_f only", "FisherMask", {**R, "score_on": "forget", "finetune": False}),
        Row("Finetune, 50 D_r", "RandomMask", {"ratio": 0.0, "retain_samples": 50}),
        Row("ActivationMask, 50 D_r", "ActivationMask", {**R, "retain_samples": 50}),
        Row("FisherMask, 50 D_r", "FisherMask", {**R, "retain_samples": 50}),
    ),
    records="fishermask_table1",
))
"""§4.3: the 50 samples score (with D_f) and fine-tune; their share of D_r is 0.1 % on CIFAR-10 (50 of 45,000), 0.09 %
here (50 of 54,000)."""

SUITES.register("fishermask_fig4")(replace(
    TABLE1,
    title="Seed 003 Fig. 4, CPU variant: FisherMask's removing ratio R ∈ {0, 0.04, 0.08, 0.12}",
    rows=(Row("Original", "Original"), *(Row(f"FisherMask R = {r}", "FisherMask", {"ratio": r}) for r in (0.0, 0.04, 0.08, 0.12))),
    records="fishermask_table1",
))

SUITES.register("fishermask_fig5")(replace(
    TABLE1,
    title="Seed 003 Fig. 5, CPU variant: fine-tuning at a constant lr of 0.1, 0.01 or 0.001 against the compressed schedule, "
          "for Finetune, ActivationMask and FisherMask",
    rows=(
        Row("Original", "Original"),
        *(Row(f"{label}, {schedule}", method, {**init, **({"schedule": "constant", "optimizer": {"init_args": {"lr": lr}}} if lr else {})})
          for label, method, init in (("Finetune", "RandomMask", {"ratio": 0.0}), ("ActivationMask", "ActivationMask", R), ("FisherMask", "FisherMask", R))
          for schedule, lr in (("lr 0.1", 0.1), ("lr 0.01", 0.01), ("lr 0.001", 0.001), ("compressed", None))),
    ),
    records="fishermask_table1",
))
"""Fig. 5's constant rates are the recipe's at the start and after each decay (its footnote 5: 0.1, 0.01, 0.001)."""

SUITES.register("fishermask_table2")(replace(
    TABLE1,
    title="Seed 003 Table 2, CPU variant: remove outliers — a seeded group of ρ of the training images trained with shuffled "
          "labels, then forgotten; the best test and noise (true-label) accuracy over epochs 0..T",
    dataset="digits",
    classes=None,
    rhos=(0.1, 0.3, 0.5),
    rows=tuple(row for row in TABLE1.rows if row.label in ("Original", "Retrain", "Finetune", "RandomMask", "ActivationMask", "GradMask", "FisherMask")),
    evaluation=replace(CURVES, relearn=False),
    main_metrics=("test/best_acc", "noise/best_acc"),
    companion_metrics=("test/acc", "noise/acc", "forget/acc", "mia/svm_asr", "cost/seconds"),
))
"""On `digits` (each of the 3 ρ × 3 seeds trains its own original and Retrain: seconds there, about an hour each on
Fashion-MNIST, `--dataset fashion_mnist`), with the multistep recipe (SGD, weight decay) so the original is not
saturated. Relearn time is left out: the forgotten group's labels are wrong, so regaining the original's accuracy on
them means relearning noise."""
