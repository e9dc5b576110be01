"""Held-out numbers of a weight set: the stage-1 ceiling and blind extraction per
physics class, on draws from the evaluation seed stream (never a training draw).

``python -m napari_qpi.evaluation.classes WEIGHTS [--n N] [--snr S]`` prints both tables;
``--foreign`` prints the stage-1 ceiling on the foreign set's kernels instead;
``--bank RUN/bank.pt`` the same tables on kernels *of the training bank* (fresh maps from
the evaluation stream): next to the held-out tables it measures how much of the gap is
memorised kernels rather than unseen physics. ``--extract auto,two-stage`` runs whole
:func:`~napari_qpi.extract` calls instead (window chosen from the data, final fit), as a
user would, and prints their table by defect.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..extraction.registry import get_method
from ..models.data import KernelBank, canonical_sign, iter_bank, make_observations
from ..models.features import power_kernel
from ..models.weights import cached_set
from ..physics.classes import CLASS_EVAL_STREAM, CLASS_SPLITS, sample_classes
from ..progress import drain

__all__ = ["class_bank", "class_maps", "extract_table", "network_table",
           "foreign_ceiling", "paired", "stage1_ceiling", "training_bank_subset"]


def _tail_similarity():
    from .metrics import tail_similarity

    return tail_similarity


def class_bank(split: str = "held_out", n: int = 128, *, seed: int = 0) -> KernelBank:
    """Kernels of the classes of ``split`` from the evaluation stream (no legacy families)."""
    specs = sample_classes(split, n, CLASS_EVAL_STREAM + seed)
    return drain(iter_bank(specs))


@torch.no_grad()
def stage1_ceiling(kernels: np.ndarray, weights: str = "default",
                   maps: np.ndarray | None = None) -> np.ndarray:
    """Tail similarity of encode → decode (posterior mean) for (N, k, k) kernels, each
    given unit norm and the canonical sign (positive core) first, as in training.

    An anchored set decodes on the power kernel of each kernel's map, ``maps`` (N, H, W)
    (required then): its ceiling is what the latent adds to what the data show.
    """
    _, nets, _ = cached_set(weights)
    vae = nets["vae"]
    kernels = np.asarray(kernels, np.float64)
    kernels = np.stack([c * canonical_sign(c) / np.linalg.norm(c) for c in kernels])
    k = torch.as_tensor(kernels, dtype=torch.float32)
    if vae.cfg.anchor and maps is None:
        raise ValueError("an anchored weight set needs the kernels' maps")
    y = None if maps is None else torch.as_tensor(np.asarray(maps), dtype=torch.float32)
    def rec_of(p):
        anchor = None if y is None else vae.anchor_of(y[p])
        return vae.decode(vae.encode(k[p], anchor)[0], anchor)

    rec = torch.cat([rec_of(p) for p in torch.arange(len(k)).split(64)])
    ts = _tail_similarity()
    return np.array([ts(a, b) for a, b in zip(k.numpy(), rec.numpy())])


def foreign_ceiling(weights: str = "default", directory=None) -> dict[str, float]:
    """Median stage-1 ceiling on the foreign set's true kernels (measure only), each
    decoded on its own observation: per map defect kind, all maps, and stack slices."""
    from .foreign import default_directory, load_foreign

    cases = load_foreign(directory or default_directory())
    rows = [(c.defect, c.kernel, c.observation) for c in cases if c.set == "maps"]
    rows += [("stack slices", kk, obs) for c in cases if c.set == "stacks"
             for kk, obs in zip(c.kernel, c.observation)]
    kinds = np.array([r[0] for r in rows])
    ceil = stage1_ceiling(np.stack([r[1] for r in rows]), weights,
                          np.stack([r[2] for r in rows]).astype(np.float32))
    out = {kind: float(np.median(ceil[kinds == kind])) for kind in dict.fromkeys(kinds)}
    out["maps"] = float(np.median(ceil[kinds != "stack slices"]))
    return out


def training_bank_subset(path, n: int = 116) -> KernelBank:
    """``n`` kernels spread evenly over a training run's ``bank.pt`` (memorisation check)."""
    stored = torch.load(path, weights_only=True)
    stored.pop("config", None)
    idx = np.linspace(0, len(stored["families"]) - 1, n).round().astype(int)
    return KernelBank(stored["spectra"][idx], stored["windows"][idx], stored["orders"][idx],
                      [stored["families"][i] for i in idx])


def class_maps(bank: KernelBank, *, snr: float = 5.0, size: int = 128,
               seed: int = 0) -> torch.Tensor:
    """One seeded map (N, size, size) per bank kernel: 5–100 scatterers, noise at ``snr``."""
    gen = torch.Generator().manual_seed(CLASS_EVAL_STREAM + seed)
    y, _ = make_observations(bank, torch.arange(len(bank)), size, gen, snr_range=(snr, snr))
    return y


@torch.no_grad()
def network_table(bank: KernelBank, weights: str = "seen", *, snr: float = 5.0,
                  size: int = 128, seed: int = 0,
                  maps: torch.Tensor | None = None) -> dict[str, dict[str, list[float]]]:
    """Blind tail similarity of the networks alone (two-stage, one-step) and the power
    kernel per class; :func:`extract_table` runs whole :func:`~napari_qpi.extract` calls.

    One map per bank kernel, ``size``² px, 5–100 scatterers, white/1-f noise at ``snr``
    (``maps``, when the caller already has :func:`class_maps` of these arguments).
    """
    _, nets, _ = cached_set(weights)
    vae = nets["vae"]
    idx = torch.arange(len(bank))
    y = class_maps(bank, snr=snr, size=size, seed=seed) if maps is None else maps
    ts = _tail_similarity()
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for part in idx.split(32):
        yb = y[part]
        anchor = vae.anchor_of(yb)
        mu, _ = nets["encoder"].encode_observations(yb, None, anchor)
        preds = {"two-stage": vae.decode(mu, anchor),
                 "one-step": nets["onestep"](yb, None),
                 "power": power_kernel(yb, bank.windows.shape[-1])}
        for name, pred in preds.items():
            for i, p in zip(part.tolist(), pred.numpy()):
                out[bank.families[i]][name].append(ts(bank.windows[i].numpy(), p))
    return out


def extract_table(bank: KernelBank, methods, weights: str = "seen", *, snr: float = 5.0,
                  size: int = 128, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Blind tail similarity of whole :func:`~napari_qpi.extract` runs per class.

    The maps of :func:`class_maps`; each method as a user runs it (``rng`` = the map's
    index, window chosen from the data, data-consistent fit), scored on the true window.
    """
    from ..extraction.extract import extract
    from .score import score

    y = class_maps(bank, snr=snr, size=size, seed=seed).numpy().astype(float)
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, obs in enumerate(y):
        for m in methods:
            kernel = extract(obs, method=m, weights=weights, rng=i).kernel
            out[bank.families[i]][m].append(
                score(bank.windows[i].numpy(), kernel)["tail_similarity"])
    return out


def _summary(table: dict, group, methods=("two-stage", "one-step", "power")) -> str:
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cls, scores in table.items():
        for m, v in scores.items():
            rows[group(cls)][m] += v
            rows["all"][m] += v
    lines = ["| group | n | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for g in sorted(rows, key=lambda g: (g == "all", g)):
        r = rows[g]
        lines.append(f"| {g} | {len(r[methods[0]])} | "
                     + " | ".join(f"{np.median(r[m]):.3f}" for m in methods) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("weights")
    p.add_argument("--split", default="held_out", choices=tuple(CLASS_SPLITS))
    p.add_argument("--n", type=int, default=116)
    p.add_argument("--snr", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bank", default=None, metavar="BANK_PT",
                   help="kernels of a training run's bank.pt instead of fresh classes")
    p.add_argument("--foreign", action="store_true",
                   help="only the stage-1 ceiling on ../shared/data/foreign (measure only)")
    p.add_argument("--against", default=None, metavar="WEIGHTS",
                   help="also print per-map differences from a second weight set on the "
                        "same maps (a rule comparing two sets reads these, not two medians)")
    p.add_argument("--extract", default=None, metavar="METHODS",
                   help="comma-separated methods run through extract() instead of the "
                        "network tables")
    a = p.parse_args(argv)
    methods = tuple(a.extract.split(",")) if a.extract else ()
    for m in methods:
        try:
            get_method(m)
        except ValueError as exc:
            p.error(f"--extract: {exc}")
    torch.set_num_threads(1)
    os.environ.setdefault("NAPARI_QPI_THREADS", "1")  # extract reads it, not torch's
    if a.foreign:
        print(f"stage-1 ceiling on the foreign kernels ({a.weights}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in foreign_ceiling(a.weights).items()))
        return
    if a.bank is None:
        bank, label = class_bank(a.split, a.n, seed=a.seed), a.split
    elif not Path(a.bank).is_file():
        p.error(f"--bank {a.bank}: no such file (a training run's bank.pt)")
    else:
        bank, label = training_bank_subset(a.bank, a.n), f"training-bank kernels of {a.bank}"
    if a.extract:
        tab = extract_table(bank, methods, a.weights, snr=a.snr, seed=a.seed)
        print(f"blind tail similarity through extract(), {label}, SNR {a.snr:g}, by defect:")
        print(_summary(tab, _defect, methods))
        return
    maps = class_maps(bank, snr=a.snr, seed=a.seed)
    ceil = stage1_ceiling(bank.windows.numpy(), a.weights, maps.numpy())
    print(f"stage-1 ceiling on {label} ({a.n} kernels): median {np.median(ceil):.3f}, "
          f"10th pct {np.percentile(ceil, 10):.3f}")
    tab = network_table(bank, a.weights, snr=a.snr, seed=a.seed, maps=maps)
    print(f"blind tail similarity, {label}, SNR {a.snr:g}, by lattice/electrons:")
    print(_summary(tab, lambda c: "/".join(c.split("/")[:2])))
    print("by defect:")
    print(_summary(tab, _defect))
    if a.against:
        other = network_table(bank, a.against, snr=a.snr, seed=a.seed, maps=maps)
        diffs = {"stage-1 ceiling": ceil - stage1_ceiling(bank.windows.numpy(), a.against,
                                                          maps.numpy())}
        for m in ("two-stage", "one-step"):  # same class order, same maps in each
            diffs[m] = np.concatenate([np.subtract(tab[c][m], other[c][m]) for c in tab])
        print(f"paired per map, `{a.weights}` − `{a.against}`: median / mean / "
              "better by > 0.05 / worse by > 0.05")
        for name, d in diffs.items():
            print(f"  {name}: {paired(d)}")


def paired(d) -> str:
    """Per-map differences of two weight sets on the same maps: "median / mean / maps
    better by > 0.05 / worse by > 0.05" (on ~100 maps two medians can move by more than
    the median of the differences where the scores are spread steeply)."""
    d = np.asarray(d, float)
    return f"{np.median(d):+.3f} / {d.mean():+.3f} / {(d > 0.05).sum()} / {(d < -0.05).sum()}"


def _defect(cls: str) -> str:
    # a bank also holds legacy families, named without "/"
    return cls.split("/")[2] if cls.count("/") == 2 else "legacy family"


if __name__ == "__main__":
    main()
