"""The convolution model Y_E = K_E ⊛ X as one operator; every solver talks only to it.

Linear ('same') convolution of an (H, W) activation with odd (E, k, k) kernel windows whose
centre pixel is the scatterer, computed by FFTs on a grid padded by the kernel's radius:
the map's own pixels never see a wrapped-around value (:func:`fft_grid`). Leading batch
dimensions (random restarts, candidate kernels) broadcast.

One class, two array backends: numpy arrays run on scipy.fft, torch tensors (float32 or
float64, CPU or GPU) on torch.fft, chosen from the kernel's type. So the classical methods
and the final fit never load torch (``extract(method="wiener")`` stays torch-free and
cheap to import), while SBD and refine run batched on a GPU — with the same code. This is
deepinv's lesson (a linear physics object with ``A``, ``A_adjoint`` and one adjointness
test), written here because the QPI model needs energies sharing one activation and the
kernel-side adjoint, which no maintained operator library offers.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

__all__ = ["ConvOperator", "TypesOperator", "fft_grid", "is_tensor"]


def fft_grid(shape: tuple[int, int], k: int, *, full: bool = False) -> tuple[int, int]:
    """The FFT grid of an (H, W) map and odd k×k kernels: the next fast size ≥ H + k // 2.

    Only the map's own pixels are ever read back (the operator crops to them, and the
    kernel-side adjoint reads a k×k window), and a circular convolution on a grid of
    G ≥ H + k // 2 agrees with the linear one there: an offset of at most k // 2 from a
    pixel of [0, H) wraps to ≥ H. The textbook H + k − 1 keeps the whole linear result,
    which nothing here reads; at a 129-px working window on a 128² map the grid is 192²
    instead of 256², 1.8× fewer points per FFT. ``full=True`` gives that textbook grid
    (for a deconvolution that divides in Fourier space, where the grid is the model).
    """
    pad = k - 1 if full else k // 2
    return tuple(int(sfft.next_fast_len(int(s) + pad, real=True)) for s in shape)


#: Below this many points a transform runs on one thread: pocketfft splits a single 2-D
#: transform by rows, and starting its threads costs more than they save. An rfft2 +
#: irfft2 pair on 2 cores (``python benchmarks/bench_fft.py``): 160² 132 µs on one
#: thread, 400–521 µs on two; 64×288² 46–49 / 27–44 ms; between 150 000 points and a
#: million the runs disagree, and an 8×128² stack's ``auto`` took as long either way.
PARALLEL_FFT_POINTS = 150_000
#: Threads of a large transform (-1: every core); :func:`~.threads.use_threads` sets it
#: to the count it gives torch, so a busy machine is not oversubscribed.
FFT_WORKERS = -1


def _workers(points: int) -> int:
    return 1 if points < PARALLEL_FFT_POINTS else FFT_WORKERS


def is_tensor(a) -> bool:
    """True for a torch tensor (checked without importing torch)."""
    return type(a).__module__.startswith("torch")


class _NumpyBackend:
    def __init__(self, dtype=np.float64) -> None:
        self.dtype = dtype

    def rfft2(self, x):
        # in the operator's precision: float32 FFTs are 2–3× faster than float64 ones
        x = np.asarray(x, self.dtype)
        return sfft.rfft2(x, axes=(-2, -1), workers=_workers(x.size))

    @staticmethod
    def irfft2(xf, grid):
        points = xf.size // xf.shape[-1] * grid[-1]
        return sfft.irfft2(xf, s=grid, axes=(-2, -1), workers=_workers(points))

    @staticmethod
    def zeros(shape, like):
        return np.zeros(shape, dtype=like.dtype)

    @staticmethod
    def arange(n, like):
        return np.arange(n)

    @staticmethod
    def pad(x, grid):
        out = np.zeros((*x.shape[:-2], *grid), dtype=x.dtype)
        out[..., : x.shape[-2], : x.shape[-1]] = x
        return out

    conj = staticmethod(np.conj)


class _TorchBackend:
    def __init__(self) -> None:
        import torch

        self.torch = torch

    def rfft2(self, x):
        return self.torch.fft.rfft2(x, dim=(-2, -1))

    def irfft2(self, xf, grid):
        return self.torch.fft.irfft2(xf, s=grid, dim=(-2, -1))

    def zeros(self, shape, like):
        return like.new_zeros(shape)

    def arange(self, n, like):
        return self.torch.arange(n, device=like.device)

    def pad(self, x, grid):
        h, w = x.shape[-2:]
        return self.torch.nn.functional.pad(x, (0, grid[1] - w, 0, grid[0] - h))

    def conj(self, z):
        return self.torch.conj(z)


_NUMPY = {np.dtype(np.float64): _NumpyBackend(np.float64),
          np.dtype(np.float32): _NumpyBackend(np.float32)}


class ConvOperator:
    """A(X) = (K_E ⊛ X)_E cropped to the map, for (batches of) kernels.

    Parameters
    ----------
    kernel : (..., E, k, k) or (k, k) ndarray or tensor
        Odd kernel windows, scatterer at the centre pixel; leading dimensions are a batch.
        A numpy kernel makes a numpy operator, a tensor a torch one. A float32 numpy
        kernel computes its FFTs in float32 (2–3× faster; outputs float32), any other in
        float64.
    shape : (int, int)
        Map shape (H, W).
    grid : (int, int), optional
        FFT grid; default :func:`fft_grid` (the next fast size ≥ map + k // 2). Pass a
        larger one to reuse a grid across kernel sizes.

    Examples
    --------
    >>> import numpy as np
    >>> op = ConvOperator(np.ones((1, 3, 3)), (8, 8))
    >>> x = np.zeros((8, 8)); x[4, 4] = 1
    >>> round(float(op.forward(x)[0, 3:6, 3:6].sum()), 6)
    9.0
    """

    def __init__(self, kernel, shape: tuple[int, int],
                 grid: tuple[int, int] | None = None) -> None:
        if is_tensor(kernel):
            self.backend = _TorchBackend()
        else:
            kernel = np.asarray(kernel)
            # float32 kernels keep float32 FFTs (the iterative fits' speed); else float64
            kernel = kernel.astype(np.float32 if kernel.dtype == np.float32 else np.float64,
                                   copy=False)
            self.backend = _NUMPY[kernel.dtype]
        if kernel.ndim == 2:
            kernel = kernel[None]
        if kernel.ndim < 3 or kernel.shape[-1] != kernel.shape[-2] or kernel.shape[-1] % 2 == 0:
            raise ValueError(f"kernel must be (..., E, k, k) with odd k, got {tuple(kernel.shape)}")
        self.kernel = kernel
        self.shape = tuple(int(s) for s in shape)
        self.size = int(kernel.shape[-1])
        self.radius = self.size // 2
        need = tuple(s + self.radius for s in self.shape)
        if grid is None:
            grid = fft_grid(self.shape, self.size)
        if any(g < n for g, n in zip(grid, need)):
            raise ValueError(f"grid {grid} is smaller than map + kernel // 2 = {need}")
        self.grid = tuple(int(g) for g in grid)
        self.kf = self.backend.rfft2(self.embed(kernel))
        self._kf_conj = None

    def with_kernel(self, kernel) -> ConvOperator:
        """The same map shape and FFT grid with another kernel (any odd size that fits)."""
        return ConvOperator(kernel, self.shape, self.grid)

    # --- helpers -------------------------------------------------------------------------
    def _indices(self, size: int, like):
        r = size // 2
        offsets = self.backend.arange(2 * r + 1, like) - r
        return offsets % self.grid[0], offsets % self.grid[1]

    def embed(self, kernel):
        """Place (..., k, k) windows on the FFT grid with their centre at index 0."""
        out = self.backend.zeros((*kernel.shape[:-2], *self.grid), kernel)
        idx0, idx1 = self._indices(kernel.shape[-1], kernel)
        out[..., idx0[:, None], idx1[None, :]] = kernel
        return out

    def window(self, grid_array, size: int | None = None):
        """Inverse of :meth:`embed`: the (..., k, k) window around index 0 of a grid array."""
        idx0, idx1 = self._indices(self.size if size is None else size, grid_array)
        return grid_array[..., idx0[:, None], idx1[None, :]]

    def pad(self, x):
        """Zero-pad (..., H, W) maps to the FFT grid."""
        return self.backend.pad(x, self.grid)

    def crop(self, y):
        """(..., G0, G1) → (..., H, W)."""
        return y[..., : self.shape[0], : self.shape[1]]

    def fft(self, x):
        """rfft2 of (..., H, W) maps zero-padded to the grid."""
        return self.backend.rfft2(self.pad(x))

    def ifft(self, xf):
        """irfft2 on the grid, not cropped."""
        return self.backend.irfft2(xf, self.grid)

    # --- the operator ----------------------------------------------------------------------
    def forward(self, x):
        """(..., H, W) activation → (..., E, H, W) maps."""
        xf = self.fft(x)[..., None, :, :]
        return self.crop(self.ifft(self.kf * xf))

    def adjoint(self, y):
        """(..., E, H, W) maps → (..., H, W): Σ_E correlation with K_E."""
        yf = self.fft(y)
        return self.crop(self.ifft((self.conj_spectrum() * yf).sum(-3)))

    def conj_spectrum(self):
        """conj(K̂): numpy's conj copies the whole spectrum (about 10 ms for 64 energies
        on a 288² grid), and every adjoint needs it, so a numpy operator keeps one; a
        tensor's conj is a free view, recomputed so autograd sees the kernel."""
        if is_tensor(self.kf):
            return self.backend.conj(self.kf)
        if self._kf_conj is None:
            self._kf_conj = np.conj(self.kf)
        return self._kf_conj

    def lipschitz(self):
        """L = max_q Σ_E |K̂_E(q)|² per batch element, the step bound for the activation."""
        p = (abs(self.kf) ** 2).sum(-3)
        return p.amax((-2, -1)) if is_tensor(p) else p.max(axis=(-2, -1))

    def kernel_forward(self, kernel, x):
        """K ↦ K ⊛ X for fixed X (linear in the kernel): (..., E, k, k) → (..., E, H, W)."""
        kf = self.backend.rfft2(self.embed(kernel))
        return self.crop(self.ifft(kf * self.fft(x)[..., None, :, :]))

    def kernel_adjoint(self, y, x, size: int | None = None):
        """Adjoint of K ↦ K ⊛ X (X fixed): the gradient of ⟨K ⊛ X, Y⟩ in K.

        Parameters
        ----------
        y : (..., E, H, W) array
        x : (..., H, W) array
        size : int, optional
            Odd window of the result; default this operator's kernel size.

        Returns
        -------
        (..., E, size, size) array
            ``G_E(d) = Σ_r Y_E(r) X(r − d)`` for ``|d| ≤ size // 2``.
        """
        size = self.size if size is None else int(size)
        if any(g < s + size // 2 for g, s in zip(self.grid, self.shape)):
            raise ValueError(f"a {size}-px window needs an FFT grid ≥ map + {size // 2}; "
                             f"this operator's is {self.grid}: pass grid=fft_grid(...)")
        corr = self.ifft(self.fft(y) * self.backend.conj(self.fft(x))[..., None, :, :])
        return self.window(corr, size)


class TypesOperator:
    """A(X) = Σ_t K_t ⊛ X_t: several defect types, each with its kernel stack and its own
    activation, summed into one map stack — the model of a map with several species.

    A thin layer over :class:`ConvOperator` (one batch element per type), with the
    interface :func:`~.fista.fista` uses, so the one FISTA fits every type's activation
    at once.

    Parameters
    ----------
    kernel : (T, E, k, k) ndarray or tensor
    shape, grid
        As for :class:`ConvOperator`.
    """

    def __init__(self, kernel, shape: tuple[int, int],
                 grid: tuple[int, int] | None = None) -> None:
        if np.ndim(kernel) != 4:
            raise ValueError(f"kernel must be (T, E, k, k), got shape {np.shape(kernel)}")
        self.op = ConvOperator(kernel, shape, grid)
        self.kernel, self.shape, self.grid = self.op.kernel, self.op.shape, self.op.grid
        self.backend = self.op.backend

    def forward(self, x):
        """(T, H, W) activations → (E, H, W) maps."""
        return self.op.forward(x).sum(0)

    def adjoint(self, y):
        """(E, H, W) maps → (T, H, W): each type's Σ_E correlation with its kernels."""
        return self.op.adjoint(y[None])

    def lipschitz(self):
        """max_q Σ_t Σ_E |K̂_{t,E}(q)|²: a bound on ‖A‖² (the trace of each frequency's
        T × T Gram matrix bounds its largest eigenvalue)."""
        p = (abs(self.op.kf) ** 2).sum((0, 1))
        return p.amax() if is_tensor(p) else float(p.max())

    def kernel_forward(self, kernel, x):
        """K ↦ Σ_t K_t ⊛ X_t for fixed X: (T, E, k, k) → (E, H, W)."""
        return self.op.kernel_forward(kernel, x).sum(0)

    def kernel_adjoint(self, y, x, size: int | None = None):
        """Adjoint of :meth:`kernel_forward`: (E, H, W) → (T, E, size, size)."""
        return self.op.kernel_adjoint(y[None], x, size)
