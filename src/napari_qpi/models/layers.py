"""Building blocks of the networks: a two-convolution block, the image encoder's
trunk, and the decoder's upsampling convolution (:class:`UpConv2d`)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ImageEncoder", "UpConv2d", "block"]


def block(cin: int, cout: int, stride: int = 2, up: bool = False) -> nn.Sequential:
    first = UpConv2d(cin, cout) if up else nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
    return nn.Sequential(
        first, nn.GroupNorm(8, cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
    )


class ImageEncoder(nn.Module):
    """(B, C, 72, 72) → flattened features (B, widths[-1]·5·5)."""

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers, c = [], cin
        for w in widths:
            layers.append(block(c, w))
            c = w
        self.net = nn.Sequential(*layers)
        self.out_features = widths[-1] * 5 * 5  # 72 → 36 → 18 → 9 → 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def _parity_taps(w: torch.Tensor, parity: int, dim: int) -> torch.Tensor:
    """The 3 taps of a 3×3 kernel along ``dim``, as they fall on the un-upsampled input
    (offsets −1, 0, +1) for output rows (or columns) of one parity."""
    w0, w1, w2 = w.unbind(dim)
    zero = torch.zeros_like(w0)
    return torch.stack([w0, w1 + w2, zero] if parity == 0 else [zero, w0 + w1, w2], dim)


class UpConv2d(nn.Conv2d):
    """A 3×3 convolution (padding 1) of the ×2 nearest-neighbour upsampled input,
    computed at the input's own resolution.

    The same numbers as ``conv(upsample(x))`` (to float rounding) and the same
    parameters (a plain ``nn.Conv2d``'s, so weight files are unchanged): upsampled pixel
    2i + p sees input pixels i − 1 … i + 1 with taps merged by parity p, so one
    convolution to 4·cout channels and a pixel shuffle replace the upsampled copy and
    the convolution on 4× the pixels. Written by hand because torch has no fused
    upsample-convolution; on 2 cores it took the latent fit's decoder step on an
    8-energy stack's 32 kernels from 87.0 to 68.7 ms, and on a map's 4 from 11.3 to
    10.5 ms (``benchmarks/bench_extract.py --decoder``).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)
        self._frozen: tuple | None = None  # (key, weight, bias) of frozen weights

    def _fused(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weight
        per = [_parity_taps(_parity_taps(w, py, 2), px, 3) for py in (0, 1) for px in (0, 1)]
        # output channel c·4 + 2·py + px: pixel_shuffle's order
        fused = torch.stack(per, 1).reshape(4 * w.shape[0], *w.shape[1:])
        fused = fused.contiguous(memory_format=torch.channels_last
                                 if w.is_contiguous(memory_format=torch.channels_last)
                                 else torch.contiguous_format)
        return fused, None if self.bias is None else self.bias.repeat_interleave(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.requires_grad:  # training: the merged taps stay in the graph
            fused, bias = self._fused()
        else:
            # frozen (inference): merged once; ~27 small tensor operations a call were a
            # tenth of a latent-fit step on a map's four kernels. The key changes when
            # the weights are loaded in place (version) or moved or reformatted (pointer).
            key = (w._version, w.data_ptr(), w.stride(),
                   None if self.bias is None else self.bias._version)
            if self._frozen is None or self._frozen[0] != key:
                self._frozen = (key, *self._fused())
            fused, bias = self._frozen[1:]
        return nn.functional.pixel_shuffle(
            nn.functional.conv2d(x, fused, bias, padding=1), 2)
