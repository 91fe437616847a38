"""Benchmark: Adv's adversarial set D̄_f (targeted L2-PGD, seed 001 Algorithm 1) vs raw model throughput and the authors' code (issue 6).

One PGD iteration is one forward and one backward pass to the input, so the limit is the model's best raw
forward+backward throughput over batch sizes (`raw`, a bare loop of `autograd.grad` on the same model and
images). Three paths, measured in one run on the same model (the dataset's cached original), the same k
forget images, N_adv, ε, step size and iterations, in adversarial-example iterations per second:

- `ours`: `methods.adversarial.adversarial_set`, all N_adv × k examples attacked together in batches of
  `--batch-size` (the methods' `pgd_batch_size`);
- `authors`: the authors' `utils.adv_attack` (csm9493/L2UL) with advertorch's `L2PGDAttack(rand_init=True,
  targeted=True)` as their run scripts build it: N_adv rounds over D_f in loader batches (their
  CIFAR script uses 32; `--authors-batch`, default k, the batch the issue quotes). Give a checkout of their
  repository with `--l2ul` and install advertorch (`pip install advertorch==0.2.3`); their code calls
  `.cuda()`, which is made a no-op on a CPU-only run. Without `--l2ul` this path is skipped.

Fewer `--steps` than the paper's 100 keep the run short; every path runs the same number, and the
throughput per iteration does not depend on it.

    python -m benchmark.perf_pgd --dataset fashion_mnist --arch narrow_cnn --k 128 --l2ul /tmp/L2UL
"""

from __future__ import annotations

import argparse
import contextlib
import io
import importlib
import importlib.util
import statistics
import types
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from methods.adversarial import adversarial_set

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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="Adversarial-set throughput: ours vs the raw model and the authors' code.")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--arch", default="narrow_cnn")
    parser.add_argument("--k", type=int, default=128, help="forget images")
    parser.add_argument("--n-adv", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10, help="PGD iterations (the paper's 100 gives the same throughput)")
    parser.add_argument("--eps", type=float, default=0.4)
    parser.add_argument("--step-size", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128, help="our PGD batch (the methods' pgd_batch_size)")
    parser.add_argument("--raw-batches", default="32,64,128,256,512,1024,2048", help="batch sizes the raw throughput is measured at")
    parser.add_argument("--authors-batch", type=int, default=None, help="loader batch of the authors' adv_attack (default k)")
    parser.add_argument("--l2ul", type=Path, default=None, help="a checkout of github.com/csm9493/L2UL")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; each path's median is reported")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from benchmark import runner
    from benchmark.pretraining import Pretrained
    from datamodules.access import FORGET_ONLY
    from datamodules.scenarios import RandomInstances
    from methods.adversarial import split_tensors

    scenario = RandomInstances(k=args.k, seed=0, dataset=args.dataset)
    scenario.setup()
    model = runner.obtain_original(scenario, Pretrained(arch=args.arch), progress=False).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = split_tensors(scenario.view("perf_pgd", FORGET_ONLY), "forget")
    n = args.k * args.n_adv
    print(f"{args.dataset}, {args.arch}, k={args.k}, N_adv={args.n_adv} ({n} examples), {args.steps} PGD iterations, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    repeated = x.repeat_interleave(args.n_adv, 0)
    targets = (y.repeat_interleave(args.n_adv) + 1) % scenario.info.num_classes
    batches = [b for b in map(int, args.raw_batches.split(",")) if b <= n]
    paths = {f"raw {b}": (lambda b=b: raw_throughput(model, repeated, targets, b)) for b in batches}

    def ours() -> float:
        start = time.perf_counter()
        adversarial_set(model, x, y, scenario.info.num_classes, n_adv=args.n_adv, eps=args.eps, steps=args.steps, step_size=args.step_size,
                        batch_size=args.batch_size, generator=torch.Generator().manual_seed(0))
        return n * args.steps / (time.perf_counter() - start)

    paths["ours"] = ours
    authors_batch = args.authors_batch or args.k
    if args.l2ul is not None:
        utils, L2PGDAttack = import_authors_code(args.l2ul)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=authors_batch)
        adversary = L2PGDAttack(model, eps=args.eps, eps_iter=args.step_size, nb_iter=args.steps, rand_init=True, targeted=True)
        if authors_batch not in batches:
            paths[f"raw {authors_batch}"] = lambda: raw_throughput(model, repeated, targets, authors_batch)

        def authors() -> float:
            with cuda_calls_stay_on_cpu(), contextlib.redirect_stderr(io.StringIO()):  # their tqdm bar
                start = time.perf_counter()
                utils.adv_attack(None, model, "cpu", loader, adversary, args.k, scenario.info.num_classes, num_adv_images=args.n_adv,
                                 indices=torch.arange(len(loader) * 128 + authors_batch))
                return n * args.steps / (time.perf_counter() - start)

        paths["authors"] = authors

    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):  # the paths alternate, so a slow spell of the machine hits them all
        for name, measure in paths.items():
            runs[name].append(measure())
    median = {name: statistics.median(values) for name, values in runs.items()}
    for b in batches:
        print(f"raw fwd+bwd, batch {b:5d}: {median[f'raw {b}']:9.0f} examples/s (median of {args.repeats})")
    best_batch = max(batches, key=lambda b: median[f"raw {b}"])
    best = median[f"raw {best_batch}"]
    results = {"raw_best": best, "ours": median["ours"], "ours_vs_raw_best": median["ours"] / best}
    print(f"ours (batch {args.batch_size}): {median['ours']:9.0f} examples/s = {median['ours'] / best:.3f} of the best raw batch "
          f"({best_batch}; target ≥ {TARGET})")
    if "authors" in median:
        at_batch = median[f"raw {authors_batch}"]
        results.update(authors=median["authors"], ours_vs_authors=median["ours"] / median["authors"])
        print(f"authors' adv_attack (batch {authors_batch}): {median['authors']:9.0f} examples/s = {median['authors'] / at_batch:.3f} of raw at "
              f"batch {authors_batch}, {median['authors'] / best:.3f} of the best raw batch")
        print(f"ours / authors: {median['ours'] / median['authors']:.2f}×")

    from methods.adv_imp import penalty_weights

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
          f"the attack costs N_adv × iterations = {args.n_adv * args.steps} passes")
    return results


if __name__ == "__main__":
    main()
