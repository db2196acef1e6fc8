"""``make bench``: what an AS-VAE training step costs against a VAE step.

For the networks of the full profile (MNIST: MLP with an 80-layer planar flow;
32x32 colour: the DCGAN-style networks), on whatever device this machine has:

* images per second of one training step of each method, on the same networks
  and batch (the AS-VAE step also trains two discriminators and inverts the
  encoder's flow, so the ratio AS-VAE / VAE is the figure that matters);
* images per second of sampling (prior draw + decoder mean);
* peak memory (GPU: ``torch.cuda.max_memory_allocated`` per method; CPU: the
  process's peak resident set, which only grows).

    python -m asvae_lib.bench [--profile full] [--steps 20] [--out results/]
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

from .train import REPO, build_model, experiment, provenance
from .trainer import Trainer, TrainConfig, pick_device

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


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


def step_throughput(dataset: str, method: str, profile: str, steps: int, device: torch.device) -> dict:
    """Images per second of ``Trainer.train_step`` on random inputs of the right shape."""
    spec = experiment(dataset, profile)
    torch.manual_seed(0)
    model = build_model(spec, SHAPES[dataset])
    bs = spec["train"]["batch_size"]
    x = torch.rand(bs, torch.tensor(SHAPES[dataset]).prod().item())
    trainer = Trainer(model, TrainConfig(method=method, device=str(device), **spec["train"]), x, x[:2], progress=False)
    x = x.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = seconds_per_call(lambda: trainer.train_step(x), steps, device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # kB on Linux
    return {"seconds_per_step": seconds, "images_per_second": bs / seconds, "batch_size": bs,
            "peak_memory_mb": peak / 2**20}


@torch.no_grad()
def sampling_throughput(dataset: str, profile: str, device: torch.device, n: int = 1000, repeats: int = 5) -> float:
    """Generated images per second, in batches of ``n``."""
    model = build_model(experiment(dataset, profile), SHAPES[dataset]).to(device).eval()
    return n / seconds_per_call(lambda: model.sample(n), repeats, device, warmup=1)


def bench(profile: str = "full", steps: int = 20, device: str = "auto") -> dict:
    dev = pick_device(device)
    result = {"profile": profile, "steps_timed": steps, **provenance(dev), "datasets": {}}
    for dataset in SHAPES:
        rows = {m: step_throughput(dataset, m, profile, steps, dev) for m in ("vae", "asvae")}
        rows["asvae_over_vae_time"] = rows["asvae"]["seconds_per_step"] / rows["vae"]["seconds_per_step"]
        rows["sampling_images_per_second"] = sampling_throughput(dataset, profile, dev)
        result["datasets"][dataset] = rows
        print(f"{dataset:8s} VAE {rows['vae']['images_per_second']:9.0f} img/s   "
              f"AS-VAE {rows['asvae']['images_per_second']:9.0f} img/s   "
              f"AS-VAE step = {rows['asvae_over_vae_time']:.1f} x VAE step   "
              f"sampling {rows['sampling_images_per_second']:9.0f} img/s   "
              f"peak {rows['asvae']['peak_memory_mb']:.0f} MB", flush=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="full", choices=("quick", "full"), help="whose network sizes (default full)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(REPO / "results"))
    args = p.parse_args(argv)
    result = bench(args.profile, args.steps, args.device)
    slug = "".join(c if c.isalnum() else "-" for c in result["device"].split(" (")[0].lower()).strip("-")
    out = Path(args.out) / f"bench-{slug}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
