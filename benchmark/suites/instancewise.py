"""Seed 000 / 001 (Cha et al., *Learning to Unlearn: Instance-wise Unlearning for Pre-trained Classifiers*, AAAI 2024
and its earlier version): Table 1, the relabeling table and the continual table, as CPU variants on Fashion-MNIST.

Seed 000 Table 1: rows BEFORE / ORACLE / NEGGRAD / RAWP / ADV / ADV+IMP, column groups k ∈ {16, 64, 128, 256}, row
groups D_f / D_r / D_test; the relabeling table (seed 001 Table 3) adds CORRECT and relabels instead of
misclassifying (its ORACLE row, seed 001 Table 7's, trains towards the new labels on D_f and on D_r). `instancewise_table1_batchnorm` runs Table 1 at k ∈ {16, 64} by BatchNorm mode (issue 16), reading
Table 1's train-mode runs back from its records; `instancewise_table1_authors` runs NEGGRAD / ADV / ADV+IMP with the
authors' code's protocol instead of the paper's (`_authors_ablation`: ADV by its weighting and PGD start under it); `instancewise_table1_random_start` ADV from a random start, `instancewise_table1_eps` ADV by attack budget ε (issue 16). The CIFAR / ImageNet settings are the configs in `configs/papers/`; the suites here are their CPU
variants on Fashion-MNIST (`--dataset digits` gives a quick check of the same grid).
"""

from __future__ import annotations

from benchmark.suites.base import SUITES, Row, Suite
from methods.base import load_defaults

# Every method's defaults are seed 000's (§Experimental details): rows give only what differs.

ADV_EPS = {"attack": {"eps": 4.0}}
"""ADV / ADV+IMP on Fashion-MNIST use the authors' run-script ε = 4.0, not the paper's 0.4: with ε = 0.4 only 8.75 % of
the targeted L2-PGD examples of narrow_cnn reach their target (k = 16, seed 0; 100 % with ε = 4.0), so D̄_f would be
copies of D_f with wrong labels rather than adversarial examples, and ADV's premise does not hold (that run kept
1.35 % D_r accuracy). The CIFAR / ImageNet configs keep the paper's 0.4.
On the BatchNorm originals the picture differs (`python -m benchmark.audits.attack_budget`, 2026-12-04, k = 16,
seeds 0-2): at ε = 0.4, 60-68 % of `narrow_cnn_bn`'s and 64-83 % of `narrow_resnet18`'s (`fashion_mnist_sgd_long`)
examples reach their target, at ε = 1.0 99-100 %. At ε = 4.0 PGD ends 1.5-2.0 from x and D̄_f's mean cross-entropy
to its targets is at most 0.0075 (0 in fp32 on `narrow_cnn_bn`), against 0.6-1.6 at ε = 0.4: the examples sit deep
in their target classes, where L_UL on D̄_f has almost no gradient. `instancewise_table1_eps` runs ADV at each budget."""

SUITES.register("instancewise_table1")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant: misclassify k random mixed-label training images",
    dataset="fashion_mnist",
    ks=(16, 64, 128, 256),
    track="fashion_mnist-random-k{k}",
    rows=(
        Row("BEFORE", "Original"),
        Row("ORACLE", "Oracle"),
        Row("NEGGRAD", "NegGrad"),
        Row("RAWP", "RAWP"),
        Row("ADV", "Adv", ADV_EPS),
        Row("ADV+IMP", "AdvImp", ADV_EPS),
    ),
))
FROZEN, REESTIMATED = {"batchnorm": "frozen"}, {"batchnorm": "reestimate"}
SUITES.register("instancewise_table1_batchnorm")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant, by BatchNorm mode while unlearning: train (the authors' code), frozen, "
          "re-estimated on 5,000 retain images afterwards (a diagnostic that lets the method see them)",
    dataset="fashion_mnist",
    ks=(16, 64),
    records="instancewise_table1",
    rows=(
        Row("BEFORE", "Original"),
        Row("ORACLE", "Oracle"),
        Row("ORACLE (BN frozen)", "Oracle", FROZEN),
        Row("NEGGRAD", "NegGrad"),
        Row("NEGGRAD (BN frozen)", "NegGrad", FROZEN),
        Row("NEGGRAD (BN re-estimated)", "NegGrad", REESTIMATED),
        Row("RAWP", "RAWP"),
        Row("RAWP (BN frozen)", "RAWP", FROZEN),
        Row("ADV", "Adv", ADV_EPS),
        Row("ADV (BN frozen)", "Adv", {**ADV_EPS, **FROZEN}),
        Row("ADV (BN re-estimated)", "Adv", {**ADV_EPS, **REESTIMATED}),
        Row("ADV+IMP", "AdvImp", ADV_EPS),
        Row("ADV+IMP (BN frozen)", "AdvImp", {**ADV_EPS, **FROZEN}),
    ),
))
SUITES.register("instancewise_table1_random_start")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant: ADV's D̄_f from x (deterministic PGD: repeated examples) or from a random "
          "start as the authors' code (N_adv × k distinct examples, `cost/adversarial_distinct`)",
    dataset="fashion_mnist",
    ks=(4, 16),
    records="instancewise_table1",
    rows=(
        Row("BEFORE", "Original"),
        Row("ADV", "Adv", ADV_EPS),
        Row("ADV (random start)", "Adv", {"attack": {"eps": 4.0, "random_start": True}}),
    ),
    companion_metrics=("rt/epochs", "cost/adversarial_distinct", "mia/svm_asr", "cost/seconds"),
))
SUITES.register("instancewise_table1_eps")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant, by ADV's attack budget ε: the authors' run script's 4.0, 1.0 (the "
          "smallest of 0.4 / 1 / 2 / 4 at which 99-100 % of D̄_f's examples reach their target on the Fashion-MNIST "
          "originals: `python -m benchmark.audits.attack_budget`), the paper's 0.4",
    dataset="fashion_mnist",
    ks=(4, 16),
    records="instancewise_table1",
    rows=(
        Row("BEFORE", "Original"),
        Row("NEGGRAD", "NegGrad"),
        Row("ADV", "Adv", ADV_EPS),
        Row("ADV (ε 1.0)", "Adv", {"attack": {"eps": 1.0}}),
        Row("ADV (ε 0.4, paper)", "Adv"),
        Row("ADV+IMP", "AdvImp", ADV_EPS),
        Row("ADV+IMP (ε 1.0)", "AdvImp", {"attack": {"eps": 1.0}}),
    ),
    companion_metrics=("rt/epochs", "cost/adversarial_distinct", "cost/seconds"),
))
SUITES.register("instancewise_relabel")(Suite(
    title="Seed 001 Table 3, CPU variant: relabel k random training images to a random other class",
    dataset="fashion_mnist",
    ks=(16, 64, 128, 256),
    relabel=True,
    track="fashion_mnist-relabel-k{k}",
    main_metrics=("relabel/acc", "forget/acc", "retain/acc", "test/acc"),
    rows=(
        Row("BEFORE", "Original"),
        Row("ORACLE", "Oracle", {"goal": "relabel"}),
        Row("CORRECT", "Correct"),
        Row("ADV", "Adv", {"goal": "relabel", **ADV_EPS}),
        Row("ADV+IMP", "AdvImp", {"goal": "relabel", **ADV_EPS}),
    ),
))

SUITES.register("instancewise_continual")(Suite(
    title="Seed 000 (AAAI) Table 3 / seed 001 Table 5, CPU variant: continual unlearning, k_CL = 8 images per step",
    dataset="fashion_mnist",
    ks=(8, 16, 64, 128),
    k_cl=8,
    track="fashion_mnist-continual",
    main_metrics=("forgotten/acc", "retain/acc", "test/acc"),
    rows=(
        Row("BEFORE", "Original"),
        Row("NEGGRAD", "NegGrad"),
        Row("ADV", "Adv", ADV_EPS),
        Row("ADV+IMP", "AdvImp", ADV_EPS),
    ),
))

AUTHORS = {"optimizer": {"init_args": {"weight_decay": 1e-4}}, "budget": {"max_epochs": 1000, "stop_check": "step"}}
"""The authors' code (csm9493/L2UL) where the paper is silent or differs: weight decay 1e-4, D_f checked after every
step, at most 1,000 epochs."""
AUTHORS_ADV = {**AUTHORS, "attack": {"eps": 4.0, "random_start": True}, "weighting": "batch_share"}
"""…and for ADV / ADV+IMP: ε = 4.0 (its run script), PGD from a random start (advertorch's `rand_init=True`), each loss
weighted by its share of the step's examples."""
SUITES.register("instancewise_table1_authors")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant, with the authors' code's protocol: weight decay 1e-4, stop check after "
          "every step, up to 1,000 epochs, ADV's losses weighted by batch share, PGD from a random start, ADV+IMP's "
          "halved penalty",
    dataset="fashion_mnist",
    ks=(16, 64),
    rows=(
        Row("BEFORE", "Original"),
        Row("NEGGRAD", "NegGrad", AUTHORS),
        Row("ADV", "Adv", AUTHORS_ADV),
        Row("ADV+IMP", "AdvImp", {**AUTHORS_ADV, "reg_lambda": 0.5}),
    ),
))
_ADV = load_defaults("configs/methods/Adv/seed000.yaml")
SLOW = {**AUTHORS, "optimizer": {"init_args": {"weight_decay": 1e-4, "lr": _ADV["optimizer"]["init_args"]["lr"] / (1 + _ADV["attack"]["n_adv"])}}}
"""The authors' budget at the learning rate that batch-share weighting gives ADV's ascent (seed 000's lr 1e-3 × the
forget images' share of a step, k of k + k·N_adv examples: 16 of 336 at k = 16): the controls that tell a slower
ascent from the adversarial term."""
SUITES.register("instancewise_table1_authors_ablation")(Suite(
    title="Seed 000 (AAAI) Table 1, CPU variant: which part of the authors' protocol keeps ADV's D_r, the loss weighting "
          "(eq. 6's sum or the authors' batch share) and PGD's start (from x or random), each under the authors' budget "
          "(weight decay 1e-4, stop check after every step, up to 1,000 epochs); and, as controls, NEGGRAD and ADV "
          "at the learning rate batch-share weighting gives the ascent at k = 16 (× 16/336)",
    dataset="fashion_mnist",
    ks=(16,),
    records="instancewise_table1_authors",
    rows=(
        Row("BEFORE", "Original"),
        Row("NEGGRAD", "NegGrad", AUTHORS),
        Row("ADV (sum, from x)", "Adv", {**AUTHORS, "attack": {"eps": 4.0}}),
        Row("ADV (sum, random start)", "Adv", {**AUTHORS, "attack": {"eps": 4.0, "random_start": True}}),
        Row("ADV (batch share, from x)", "Adv", {**AUTHORS, "attack": {"eps": 4.0}, "weighting": "batch_share"}),
        Row("ADV (batch share, random start)", "Adv", AUTHORS_ADV),
        Row("NEGGRAD (lr × 16/336)", "NegGrad", SLOW),
        Row("ADV (sum, random start, lr × 16/336)", "Adv", {**SLOW, "attack": {"eps": 4.0, "random_start": True}}),
    ),
    companion_metrics=("rt/epochs", "cost/epochs", "cost/adversarial_distinct", "mia/svm_asr", "cost/seconds"),
))
