"""Extraction: one forward operator, one FISTA, the method registry and ``extract()``.

- :mod:`.operator` — the convolution model K ⊛ X (forward, adjoint, kernel adjoint)
- :mod:`.fista` — the one sparse non-negative activation solver
- :mod:`.sbd` — sparse blind deconvolution (with :mod:`.recenter`, :mod:`.noise`)
- :mod:`.fit` — the data-consistent final fit (activation and per-energy amplitudes)
- :mod:`.quality` — scores without ground truth; :mod:`.window` — the automatic window
- :mod:`.registry` — the methods and what each needs; their code in :mod:`.methods`
- :mod:`.extract` — :func:`extract` and :func:`iter_extract`; :mod:`.run` — one method at
  its working scale; :mod:`.config` — the rules of the automatic choices

Importing this package loads no method and no torch.
"""

from ..progress import Progress
from .config import AutoConfig
from .extract import Extraction, extract, iter_extract
from .registry import METHODS, Method, MethodResult, get_method

__all__ = ["METHODS", "AutoConfig", "Extraction", "Method", "MethodResult", "Progress", "extract",
           "get_method", "iter_extract"]
