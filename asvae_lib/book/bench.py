"""``make bench``: what an AS-VAE training step costs against a VAE step.

For the networks of the full profile (MNIST: MLP with an 80-layer planar flow;
32x32 colour: the DCGAN-style networks), on whatever device this machine has:

* images per second of one training step of each method, on the same networks
  and batch (the AS-VAE step also trains two discriminators and inverts the
  encoder's flow, so the ratio AS-VAE / VAE is the figure that matters), at the
  profile's batch (100) and at a larger one (1000), since a small batch on a GPU
  measures kernel launches more than arithmetic;
* for networks with a flow (MNIST), the same steps with the plain layer-by-layer
  flow (:class:`~asvae_lib.flows.ReferencePlanarFlow`, inverted by bisection), so
  the fast flow's speed-up is measured in the same run on the same machine;
* images per second of sampling (prior draw + decoder mean);
* peak memory (GPU: ``torch.cuda.max_memory_allocated`` per method; CPU: the
  process's peak resident set, which only grows);
* the arithmetic: FLOPs per image of each step (matrix products and convolutions, as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them), the GFLOP/s the step achieves,
  and beside them a plain 1000 x 1000 matrix product's GFLOP/s, measured in the same run
  (the machine's load average is recorded with the result). Goals, not tests: the
  AS-VAE step at most 4x the VAE step's time at the training batch, at least 60% of the
  matrix product's GFLOP/s.

    python -m asvae_lib.book.bench [--profile full] [--steps 20] [--batches 100 1000] [--out results/]
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data import SHAPES
from ..experiments import REPO, experiment, provenance
from ..flows import PlanarFlow, ReferencePlanarFlow
from ..trainer import TrainConfig, Trainer, pick_device

BENCHED = ("mnist", "cifar10")   # ImageNet 32x32 has CIFAR-10's networks


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn, repeats: int, device, warmup: int = 3) -> float:
    """Wall-clock seconds per call of ``fn`` after ``warmup`` calls, waiting for the GPU."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def use_reference_flows(model: torch.nn.Module) -> bool:
    """Evaluate every planar flow of ``model`` the plain way (same parameters); False if it has none."""
    flows = [m for m in model.modules() if isinstance(m, PlanarFlow)]
    for flow in flows:
        flow.__class__ = ReferencePlanarFlow      # a subclass without state of its own: only the methods change
    return bool(flows)


def matmul_gflops(device: torch.device, n: int = 1000, repeats: int = 20) -> float:
    """GFLOP/s of a plain ``n x n`` float32 matrix product (``2 n^3`` FLOPs) on ``device``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, repeats, device) / 1e9


def step_flops(trainer: Trainer, x: torch.Tensor) -> int:
    """FLOPs of one training step (matrix products and convolutions, forwards and backwards)."""
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(x)
    return counter.get_total_flops()


def step_throughput(dataset: str, method: str, profile: str, steps: int, device: torch.device,
                    batch_size: int | None = None, reference_flow: bool = False, reading: str = "A",
                    lam: float = 1.0) -> dict | None:
    """Images per second, FLOPs per image and GFLOP/s of ``Trainer.train_step`` on random inputs of
    the right shape, at the profile's batch size unless ``batch_size`` is given, under ``reading``
    of (12); with ``reference_flow``, the flows run as :class:`ReferencePlanarFlow` (None if the
    networks have no flow)."""
    spec = experiment(dataset, profile)
    torch.manual_seed(0)
    model = spec.build_model(SHAPES[dataset])
    if reference_flow and not use_reference_flows(model):
        return None
    bs = batch_size or spec.train.batch_size
    x = torch.rand(bs, torch.tensor(SHAPES[dataset]).prod().item())
    config = TrainConfig(method=method, device=str(device), reading=reading, lam=lam,
                         **{**spec.train.__dict__, "batch_size": bs})
    trainer = Trainer(model, config, x, x[:2], progress=False)
    x = x.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = seconds_per_call(lambda: trainer.train_step(x), steps, device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # kB on Linux
    flops = step_flops(trainer, x)
    return {"seconds_per_step": seconds, "images_per_second": bs / seconds, "batch_size": bs,
            "peak_memory_mb": peak / 2**20, "flops_per_image": flops / bs, "gflops_per_second": flops / seconds / 1e9}


@torch.no_grad()
def sampling_throughput(dataset: str, profile: str, device: torch.device, n: int = 1000, repeats: int = 5) -> float:
    """Generated images per second, in batches of ``n``."""
    model = experiment(dataset, profile).build_model(SHAPES[dataset]).to(device).eval()
    return n / seconds_per_call(lambda: model.sample(n), repeats, device, warmup=1)


def batch_rows(dataset: str, profile: str, steps: int, device: torch.device, batch_size: int) -> dict:
    """VAE and AS-VAE steps at one batch size, with the fast flow and (where there is
    a flow) the reference flow; the ratios AS-VAE / VAE and reference / fast."""
    rows = {m: step_throughput(dataset, m, profile, steps, device, batch_size) for m in ("vae", "asvae")}
    rows["asvae_over_vae_time"] = rows["asvae"]["seconds_per_step"] / rows["vae"]["seconds_per_step"]
    rows["asvae_B"] = step_throughput(dataset, "asvae", profile, steps, device, batch_size, reading="B", lam=3.0)
    rows["asvae_B_over_vae_time"] = rows["asvae_B"]["seconds_per_step"] / rows["vae"]["seconds_per_step"]
    reference = {m: step_throughput(dataset, m, profile, steps, device, batch_size, reference_flow=True)
                 for m in ("vae", "asvae")}
    if reference["vae"] is not None:
        for m in ("vae", "asvae"):
            rows[f"{m}_reference_flow"] = reference[m]
            rows[f"{m}_reference_flow_over_fast_time"] = reference[m]["seconds_per_step"] / rows[m]["seconds_per_step"]
        rows["asvae_over_vae_time_reference_flow"] = (reference["asvae"]["seconds_per_step"]
                                                      / reference["vae"]["seconds_per_step"])
    return rows


def _line(dataset: str, bs: int, rows: dict, matmul: float) -> str:
    line = (f"{dataset:8s} batch {bs:5d}   VAE {rows['vae']['images_per_second']:8.0f} img/s   "
            f"AS-VAE {rows['asvae']['images_per_second']:8.0f} img/s   "
            f"AS-VAE step = {rows['asvae_over_vae_time']:.1f} x VAE step (goal <= 4), under reading B "
            f"{rows['asvae_B_over_vae_time']:.1f} x\n{'':21s}" + "   ".join(
                f"{m} {rows[m]['flops_per_image'] / 1e6:.1f} MFLOP/image at {rows[m]['gflops_per_second']:.1f} GFLOP/s "
                f"({rows[m]['gflops_per_second'] / matmul:.0%} of the matmul's)" for m in ("vae", "asvae", "asvae_B")))
    if "asvae_reference_flow" in rows:
        line += (f"   | reference flow: VAE {rows['vae_reference_flow']['images_per_second']:6.0f}, "
                 f"AS-VAE {rows['asvae_reference_flow']['images_per_second']:6.0f} img/s "
                 f"({rows['asvae_over_vae_time_reference_flow']:.1f} x), the fast flow's AS-VAE step "
                 f"{rows['asvae_reference_flow_over_fast_time']:.2f} x faster")
    return line


def bench(profile: str = "full", steps: int = 20, device: str = "auto", batches=(100, 1000), datasets=BENCHED) -> dict:
    """Per dataset: the profile's batch's rows at the top level (as before), the rows of
    every batch (the profile's included) under ``batches`` (one that does not fit in GPU
    memory is left out), and sampling."""
    dev = pick_device(device)
    result = {"profile": profile, "steps_timed": steps, **provenance(dev), "datasets": {},
              "load_average_1min": os.getloadavg()[0] if dev.type == "cpu" else None}
    result["matmul_gflops_per_second"] = matmul = matmul_gflops(dev)
    print(f"a 1000 x 1000 matrix product: {matmul:.1f} GFLOP/s", flush=True)
    for dataset in datasets:
        per_batch, own_bs = {}, experiment(dataset, profile).train.batch_size
        for bs in sorted({own_bs, *batches}):
            try:
                per_batch[str(bs)] = rows = batch_rows(dataset, profile, steps, dev, bs)
            except torch.cuda.OutOfMemoryError:
                print(f"{dataset:8s} batch {bs:5d}   out of GPU memory", flush=True)
                torch.cuda.empty_cache()
                continue
            print(_line(dataset, bs, rows, matmul), flush=True)
        own = per_batch.get(str(own_bs), {})
        sampling = sampling_throughput(dataset, profile, dev)
        result["datasets"][dataset] = {**own, "sampling_images_per_second": sampling, "batches": per_batch}
        print(f"{dataset:8s} sampling {sampling:9.0f} img/s   "
              f"peak {max(r['asvae']['peak_memory_mb'] for r in per_batch.values()):.0f} MB", flush=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.book.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="full", choices=("quick", "full"), help="whose network sizes (default full)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--batches", type=int, nargs="+", default=[100, 1000], help="batch sizes (default 100 1000)")
    p.add_argument("--datasets", nargs="+", default=list(BENCHED), choices=BENCHED)
    p.add_argument("--out", default=str(REPO / "results"))
    args = p.parse_args(argv)
    result = bench(args.profile, args.steps, args.device, args.batches, args.datasets)
    slug = "".join(c if c.isalnum() else "-" for c in result["device"].split(" (")[0].lower()).strip("-")
    part = "" if tuple(args.datasets) == BENCHED else "-" + "-".join(args.datasets)   # a part: its own file
    out = Path(args.out) / f"bench-{slug}{part}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
