"""Adam for the latent fit: the numbers of ``torch.optim.Adam`` on the CPU, without its
constructor's import of ``torch._dynamo``.

Written by hand because that import costs 1.0–1.3 s, in one call no Cancel can
interrupt, in the first latent fit of every process: a script's or the CLI's first
``auto`` call paid it, and napari's Cancel waited that long. The update is the one of
torch's single-tensor path (its CPU default): moments by ``lerp_`` and ``addcmul_``, the
bias corrections in Python floats, ``addcdiv_`` — so the iterates are the same to the
bit (tested against ``torch.optim.Adam``).
"""

from __future__ import annotations

import torch

__all__ = ["Adam"]


class Adam:
    """Adam (Kingma & Ba 2015) on a few leaf tensors; no weight decay, no AMSGrad.

    Parameters
    ----------
    params : sequence of Tensor
        Leaf tensors with ``requires_grad``; updated in place by :meth:`step`.
    lr : float
    betas : (float, float)
    eps : float
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format)
                        for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format)
                           for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its ``.grad``."""
        beta1, beta2 = self.betas
        self.steps += 1
        step_size = self.lr / (1 - beta1**self.steps)
        correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / correction2_sqrt).add_(self.eps), value=-step_size)

    def kept(self, keep: list[int]) -> Adam:
        """New leaf tensors of the entries ``keep`` along each parameter's first axis,
        and an Adam that goes on from this one's moments and step count for them (the
        latent fit's pruned views)."""
        new = Adam([p.detach()[keep].clone().requires_grad_(True) for p in self.params],
                   self.lr, self.betas, self.eps)
        new.steps = self.steps
        new.exp_avg = [m[keep].clone() for m in self.exp_avg]
        new.exp_avg_sq = [v[keep].clone() for v in self.exp_avg_sq]
        return new
