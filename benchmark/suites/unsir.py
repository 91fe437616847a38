"""Seed 002 (Tarun et al., *Fast Yet Effective Machine Unlearning*, IEEE TNNLS): Table I as a CPU variant on
Fashion-MNIST — forget whole classes ({0}, {1, 2}, {3, 4, 5, 6}, {3, …, 9}: 1, 2, 4 and 7 of 10) from an original trained
from scratch; rows Original, Retrain, FineTune, NegGrad, UNSIR; A_Df / A_Dr on the test split (the paper's values
imply test-split accuracy), relearn time as the paper measures it. The CIFAR-10 / CIFAR-100 / VGGFace settings are
the configs in `configs/papers/*unsir*.yaml`; `unsir_table2` is Table II (Fisher forgetting, class 0, sharing Table I's runs), `unsir_table5`
Table V (the impair / repair schedules, and the official notebook's behaviour as an ablation row).
`unsir_table3` / `unsir_table4` are Tables III / IV's setting (fine-tuning a pretrained model, then forgetting 1 and
seeded random 2 / 4 / 6 of 10 classes with head / body or uniform learning rates).
`--dataset digits --seeds '[0]'` is a quick check of Table I's grid.
"""

from __future__ import annotations

import random
from dataclasses import replace

from benchmark.metrics.evaluator import Evaluation
from benchmark.suites.base import MIA_SAMPLES, SUITES, Row, Suite
from methods.base import load_defaults

SEED002_RT = Evaluation(mia=True, mia_samples=MIA_SAMPLES, relearn=True, relearn_split="test_forget", relearn_optimizer="recipe")
"""Relearn time as seed 002 measures it (its precisions: the original's optimizer, lr and weight decay, batch 256, 500
random training images per epoch, the forgotten classes' test accuracy back to the original's, cap 100). The
membership attacks are not in the paper: the companion table's `mia/*` rows are ours."""

TABLE1 = SUITES.register("unsir_table1")(Suite(
    title="Seed 002 (TNNLS) Table I, CPU variant: forget 1 / 2 / 4 / 7 whole classes without seeing them (UNSIR) and the baselines",
    dataset="fashion_mnist",
    ks=(),
    classes=((0,), (1, 2), (3, 4, 5, 6), (3, 4, 5, 6, 7, 8, 9)),
    retain_per_class=1000,
    recipe="fashion_mnist_unsir",
    rows=(
        Row("Original", "Original"),
        Row("Retrain", "Retrain"),
        Row("FineTune", "FineTune"),
        Row("NegGrad", "NegGrad", load_defaults("configs/methods/NegGrad/seed002.yaml")),
        Row("UNSIR", "UNSIR"),
    ),
    evaluation=SEED002_RT,
    track="fashion_mnist-classes-{classes}",
    main_metrics=("test_forget/acc", "test_retain/acc"),
    companion_metrics=("rt/epochs", "forget/acc", "retain/acc", "mia/svm_asr", "cost/seconds"),
))
"""Tables II and V are Table I's setting on class 0 with other rows, sharing its records."""

SUITES.register("unsir_table2")(replace(
    TABLE1,
    title="Seed 002 (TNNLS) Table II, CPU variant: forget class 0 — Fisher forgetting against UNSIR, on Table I's originals",
    classes=((0,),),
    rows=(Row("Original", "Original"), Row("Retrain", "Retrain"), Row("Fisher", "Fisher"), Row("UNSIR", "UNSIR")),
    records="unsir_table1",
))

SUITES.register("unsir_table5")(replace(
    TABLE1,
    title="Seed 002 (TNNLS) Table V, CPU variant: UNSIR's impair / repair schedule (IR, IIR, IRIR) forgetting class 0, "
          "and the official notebook's behaviour (noise labelled 0, 3 images a copy, train-mode BatchNorm) as an ablation row",
    classes=((0,),),
    rows=(
        Row("Original", "Original"),
        Row("UNSIR IR", "UNSIR"),
        Row("UNSIR IIR", "UNSIR", {"schedule": "IIR", "budget": {"max_epochs": 3}}),
        Row("UNSIR IRIR", "UNSIR", {"schedule": "IRIR", "budget": {"max_epochs": 4}}),
        Row("UNSIR IR, notebook", "UNSIR", {"notebook_compat": True}),
    ),
    evaluation=replace(SEED002_RT, curves=True),
    track=None,
    companion_metrics=("rt/epochs", "forget/acc", "retain/acc", "cost/seconds"),
    records="unsir_table1",
))

FINETUNED_CLASSES = ((0,), *(tuple(sorted(random.Random(0).sample(range(10), k))) for k in (2, 4, 6)))
"""Tables III / IV forget class 0 and 20 / 40 / 60 seeded random classes of CIFAR-100's 100; here class 0 and 2 / 4 / 6
classes of 10 drawn by `random.Random(0).sample`."""

TABLE3 = SUITES.register("unsir_table3")(Suite(
    title="Seed 002 (TNNLS) Table III, CPU variant: a pretrained model fine-tuned 5 epochs (body trained on digits28), then "
          "UNSIR with head / body learning rates forgets 1 / 2 / 4 / 6 of 10 classes",
    dataset="fashion_mnist",
    ks=(),
    classes=FINETUNED_CLASSES,
    retain_per_class=600,
    recipe="fashion_mnist_finetune",
    rows=(
        Row("Original", "Original"),
        Row("Retrain", "Retrain"),
        Row("UNSIR head / body lrs", "UNSIR", {"impair_lr": 0.01, "repair_lr": 0.005, "body_lrs": [1e-4, 1e-4]}),
    ),
    evaluation=SEED002_RT,
    main_metrics=("test_forget/acc", "test_retain/acc"),
    companion_metrics=("rt/epochs", "forget/acc", "retain/acc", "mia/svm_asr", "cost/seconds"),
))
"""Table III's CIFAR-100 ResNet-18 learning rates (§V-D: impair 0.01 head / 1e-4 body, repair 0.005 / 1e-4), D_r_sub a tenth
of each retain class as CIFAR-100's 50 of 500. Retrain = the same fine-tuning on D_r (the pretrained body, 5 epochs)."""

SUITES.register("unsir_table4")(replace(
    TABLE3,
    title="Seed 002 (TNNLS) Table IV, CPU variant: Table III's models, UNSIR with one learning rate for every parameter "
          "(VGGFace-100 ResNet-18's impair 0.01 / repair 0.001, noise × 15)",
    rows=(
        Row("Original", "Original"),
        Row("Retrain", "Retrain"),
        Row("UNSIR uniform lrs", "UNSIR", {"impair_lr": 0.01, "repair_lr": 0.001, "noise_copies": 15}),
    ),
    records="unsir_table3",
))
