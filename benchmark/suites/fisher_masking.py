"""Seed 003 (*Unlearning with Fisher Masking*): its class-0 table as a CPU variant on Fashion-MNIST — accuracy on the
forgotten class's and the other classes' test images right after masking (epoch 0, no fine-tuning: §4.1's first
block) and after T epochs of fine-tuning, with the volatility of their curves — from an original trained with its
multistep schedule (`fashion_mnist_multistep`); `--dataset digits --seeds '[0]'` is a quick check of the same grid.
"""

from __future__ import annotations

from benchmark.metrics.evaluator import Evaluation
from benchmark.suites.base import MIA_SAMPLES, SUITES, Row, Suite

CURVES = Evaluation(mia=True, mia_samples=MIA_SAMPLES, relearn=True, relearn_split="test_forget", relearn_optimizer="recipe", curves=True)
"""Per-epoch test_forget / test_retain curves (epoch 0 right after masking) for the volatility; relearn time and the
attacks are additions (the paper's Appendix C is missing)."""
R = {"ratio": 0.04}
"""Seed 003's R for MNIST (0.04), the closer of its two values to Fashion-MNIST."""

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
        Row("Finetune", "RandomMask", {"ratio": 0.0}),
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
