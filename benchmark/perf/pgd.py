"""Benchmark: Adv's adversarial set D̄_f (targeted L2-PGD, seed 001 Algorithm 1) vs raw model throughput and the authors' code (issue 6).

One PGD iteration is one forward and one backward pass to the input, so the limit is the model's best raw
forward+backward throughput over batch sizes (`raw`, a bare loop of `autograd.grad` on the same model and
images). Three paths, measured in one run on the same model (the dataset's cached original), the same k
forget images, N_adv, ε, step size and iterations, in adversarial-example iterations per second:

- `ours`: `methods.blocks.adversarial.adversarial_set`, all N_adv × k examples attacked together in batches of
  `--batch_size` (the methods' `pgd_batch_size`);
- `authors`: the authors' `utils.adv_attack` (csm9493/L2UL) with advertorch's `L2PGDAttack(rand_init=True,
  targeted=True)` as their run scripts build it: N_adv rounds over D_f in loader batches (their
  CIFAR script uses 32; `--authors_batch`, default k, the batch the issue quotes). Give a checkout of their
  repository with `--l2ul` and install advertorch (`pip install advertorch==0.2.3`); their code calls
  `.cuda()`, which is made a no-op on a CPU-only run. Without `--l2ul` this path is skipped.

Fewer `--steps` than the paper's 100 keep the run short; every path runs the same number, and the
throughput per iteration does not depend on it.

    python -m benchmark.perf.pgd --dataset fashion_mnist --arch narrow_cnn --k 128 --l2ul /tmp/L2UL
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from jsonargparse import auto_cli

from benchmark.experiment import runner
from benchmark.models.pretraining import Pretrained
from datamodules.access import FORGET_ONLY
from datamodules.scenarios import RandomInstances
from methods.blocks.adversarial import PGD, adversarial_set, split_tensors
from methods.blocks.importance import penalty_weights

TARGET = 0.9


def raw_throughput(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, batch: int, seconds: float = 0.5) -> float:
    """Examples per second of bare forward + backward-to-input passes at `batch` (what one PGD iteration costs),
    after one warm-up pass, over at least `seconds`."""
    xb, tb = x[:batch].clone(), target[:batch]

    def one_pass(xb: torch.Tensor) -> torch.Tensor:
        xb.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(xb), tb, reduction="sum"), xb)
        return (xb.detach() - 0.01 * grad.sign()).clamp(0, 1)

    xb, passes, start = one_pass(xb), 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        xb, passes = one_pass(xb), passes + 1
    return batch * passes / elapsed


@contextlib.contextmanager
def cuda_calls_stay_on_cpu():
    """The authors' code calls `.cuda()` on tensors; on a CPU-only machine make that a no-op."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def import_authors_code(l2ul: Path):
    """The authors' `utils` module and advertorch's `L2PGDAttack` (advertorch 0.2.3 imports a helper newer torch dropped)."""
    gradcheck = sys.modules["torch.autograd.gradcheck"]
    if not hasattr(gradcheck, "zero_gradients"):
        def zero_gradients(x):
            if isinstance(x, torch.Tensor) and x.grad is not None:
                x.grad.detach_().zero_()
        gradcheck.zero_gradients = zero_gradients
    try:
        from advertorch.attacks import L2PGDAttack
    except ImportError:
        sys.exit("the authors' path needs advertorch: pip install advertorch==0.2.3")
    if not (l2ul / "utils.py").exists():
        sys.exit(f"{l2ul} is not a checkout of csm9493/L2UL (no utils.py)")
    if importlib.util.find_spec("transformers") is None:  # their utils imports it for the ViT scripts only
        stub = types.ModuleType("transformers")
        stub.AutoFeatureExtractor = stub.AutoModelForImageClassification = None
        sys.modules["transformers"] = stub
    sys.path.insert(0, str(l2ul))
    return importlib.import_module("utils"), L2PGDAttack


def main(
    dataset: str = "fashion_mnist",
    arch: str = "narrow_cnn",
    k: int = 128,
    n_adv: int = 20,
    steps: int = 10,
    eps: float = 0.4,
    step_size: float = 0.1,
    batch_size: int = 128,
    raw_batches: list[int] = [32, 64, 128, 256, 512, 1024, 2048],  # noqa: B006 (jsonargparse shows it)
    authors_batch: int | None = None,
    l2ul: str | None = None,
    repeats: int = 5,
    threads: int | None = None,
) -> dict[str, float]:
    """Adversarial-set throughput: ours vs the raw model and the authors' code.

    Args:
        dataset: registered dataset name.
        arch: the original model's architecture.
        k: forget images.
        n_adv: adversarial examples per forget image (N_adv).
        steps: PGD iterations (the paper's 100 gives the same throughput).
        eps: L2 radius of the attack.
        step_size: PGD step size.
        batch_size: our PGD batch (the methods' pgd_batch_size).
        raw_batches: batch sizes the raw throughput is measured at.
        authors_batch: loader batch of the authors' adv_attack (default k).
        l2ul: a checkout of github.com/csm9493/L2UL (without it, the authors' path is skipped).
        repeats: timed rounds; each path's median is reported.
        threads: torch threads (default: torch's choice).
    """
    if threads:
        torch.set_num_threads(threads)

    scenario = RandomInstances(k=k, seed=0, dataset=dataset)
    scenario.setup()
    model = runner.obtain_original(scenario, Pretrained(arch=arch), progress=False).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = split_tensors(scenario.view("perf_pgd", FORGET_ONLY), "forget")
    n = k * n_adv
    print(f"{dataset}, {arch}, k={k}, N_adv={n_adv} ({n} examples), {steps} PGD iterations, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    repeated = x.repeat_interleave(n_adv, 0)
    targets = (y.repeat_interleave(n_adv) + 1) % scenario.info.num_classes
    batches = [b for b in raw_batches if b <= n]
    paths = {f"raw {b}": (lambda b=b: raw_throughput(model, repeated, targets, b)) for b in batches}

    def ours() -> float:
        start = time.perf_counter()
        attack = PGD(n_adv=n_adv, eps=eps, steps=steps, step_size=step_size, batch_size=batch_size)
        adversarial_set(model, x, y, scenario.info.num_classes, attack, generator=torch.Generator().manual_seed(0))
        return n * steps / (time.perf_counter() - start)

    paths["ours"] = ours
    authors_batch = authors_batch or k
    if l2ul is not None:
        utils, L2PGDAttack = import_authors_code(Path(l2ul))
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=authors_batch)
        adversary = L2PGDAttack(model, eps=eps, eps_iter=step_size, nb_iter=steps, rand_init=True, targeted=True)
        if authors_batch not in batches:
            paths[f"raw {authors_batch}"] = lambda: raw_throughput(model, repeated, targets, authors_batch)

        def authors() -> float:
            with cuda_calls_stay_on_cpu(), contextlib.redirect_stderr(io.StringIO()):  # their tqdm bar
                start = time.perf_counter()
                utils.adv_attack(None, model, "cpu", loader, adversary, k, scenario.info.num_classes, num_adv_images=n_adv,
                                 indices=torch.arange(len(loader) * 128 + authors_batch))
                return n * steps / (time.perf_counter() - start)

        paths["authors"] = authors

    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):  # the paths alternate, so a slow spell of the machine hits them all
        for name, measure in paths.items():
            runs[name].append(measure())
    median = {name: statistics.median(values) for name, values in runs.items()}
    for b in batches:
        print(f"raw fwd+bwd, batch {b:5d}: {median[f'raw {b}']:9.0f} examples/s (median of {repeats})")
    best_batch = max(batches, key=lambda b: median[f"raw {b}"])
    best = median[f"raw {best_batch}"]
    results = {"raw_best": best, "ours": median["ours"], "ours_vs_raw_best": median["ours"] / best}
    print(f"ours (batch {batch_size}): {median['ours']:9.0f} examples/s = {median['ours'] / best:.3f} of the best raw batch "
          f"({best_batch}; target ≥ {TARGET})")
    if "authors" in median:
        at_batch = median[f"raw {authors_batch}"]
        results.update(authors=median["authors"], ours_vs_authors=median["ours"] / median["authors"])
        print(f"authors' adv_attack (batch {authors_batch}): {median['authors']:9.0f} examples/s = {median['authors'] / at_batch:.3f} of raw at "
              f"batch {authors_batch}, {median['authors'] / best:.3f} of the best raw batch")
        print(f"ours / authors: {median['ours'] / median['authors']:.2f}×")

    for p in model.parameters():
        p.requires_grad_(True)
    def one_pass() -> float:
        start = time.perf_counter()
        model(x).logsumexp(1).sum().backward()
        return time.perf_counter() - start

    one_pass = statistics.median(one_pass() for _ in range(7))
    start = time.perf_counter()
    penalty_weights(model, x)
    importance = time.perf_counter() - start
    results["importance_passes"] = importance / one_pass
    print(f"eq. 2 importance over D_f: {importance:.3f} s = {importance / one_pass:.1f} forward+backward passes over D_f ({one_pass:.3f} s each); "
          f"the attack costs N_adv × iterations = {n_adv * steps} passes")
    return results


if __name__ == "__main__":
    auto_cli(main)
