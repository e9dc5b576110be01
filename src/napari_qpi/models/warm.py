"""Starting a training run from a weight set: tensors of matching name and shape are
copied, a convolution that gained input channels keeps the source's and starts the new
ones silent (so the run begins exactly where the source set is)."""

from __future__ import annotations

import torch

from .weights import PARTS, load_set, resolve


def load_source(source: str, names=tuple(PARTS)) -> dict:
    """The networks of the weight set ``source`` among ``names`` (those it holds), every
    file checked: run before any work, so a damaged set fails at once, not after the
    kernel bank is built.

    Raises
    ------
    ValueError
        ``source`` is neither a shipped name nor a folder.
    QPIFormatError
        A file of the set is missing, damaged or non-finite; the message names it.
    """
    path = resolve(source)
    parts = tuple(n for n in names if (path / f"{n}.safetensors").is_file())
    return load_set(path, parts=parts)[1]


def warm_start(modules: dict, source: str) -> frozenset:
    """Copy tensors of matching name and shape from a weight set; return the encoder
    trunks (``guide``, ``power``) that got weights."""
    nets = load_source(source, tuple(modules))
    warm = set()
    for name, net in nets.items():
        own = modules[name].state_dict()
        for key, value in net.state_dict().items():
            if key not in own:
                continue
            if own[key].shape == value.shape:
                own[key].copy_(value)
            elif more_inputs(own[key], value):  # a new input channel starts silent
                own[key].zero_()[:, :value.shape[1]].copy_(value)
            else:
                continue
            if name == "encoder":
                warm.add(key.split(".")[0])
    return frozenset(warm)


def more_inputs(own: torch.Tensor, source: torch.Tensor) -> bool:
    """A convolution weight that differs from ``source`` only by more input channels."""
    return (own.ndim == 4 and own.shape[0] == source.shape[0]
            and own.shape[2:] == source.shape[2:] and own.shape[1] > source.shape[1])


def first_channels(source: dict, target: dict) -> dict:
    """``source`` tensors cut to ``target``'s input channels (a kernel encoder that also
    reads the anchor → a one-channel trunk: its kernel channel)."""
    return {k: v[:, :target[k].shape[1]] if v.shape != target[k].shape else v
            for k, v in source.items()}
