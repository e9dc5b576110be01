"""How prominent must a Bragg peak be? Detection on the project's own instrument draws.

For 80 own draws (``make_instrument_cases`` seeds 0 and 1; background removed, and line
offsets where found, as the automatic steps do), counts the maps with a lattice on which
two Bragg directions are found, and the lattice-free maps on which any peak is found, for
several prominences (``napari_qpi.io.lattice.PROMINENCE`` is the one shipped).

    python scripts/bragg_choice.py
"""

from __future__ import annotations

import numpy as np

from napari_qpi.evaluation.instrument import make_instrument_cases
from napari_qpi.io.lattice import find_bragg_peaks, lattice_vectors
from napari_qpi.io.pipeline import LINE_RATIO
from napari_qpi.io.preprocess import flatten_lines, line_offset_ratio, subtract_background


def prepared(observation):
    flat = subtract_background(observation)
    return flatten_lines(flat) if line_offset_ratio(flat) > LINE_RATIO else flat


def main() -> None:
    cases = make_instrument_cases(40) + make_instrument_cases(40, seed=1)
    maps = [prepared(c.observation) for c in cases]
    lattice = np.array(["lattice" in c.artefacts for c in cases])
    for prom in (10, 20, 30, 40, 60, 100):
        two = np.array([lattice_vectors(find_bragg_peaks(m, prominence=prom)) is not None
                        for m in maps])
        anyp = np.array([len(find_bragg_peaks(m, prominence=prom)) > 0 for m in maps])
        print(f"prominence {prom}: two directions on {two[lattice].sum()}/{lattice.sum()} "
              f"lattice maps, a peak on {anyp[~lattice].sum()}/{(~lattice).sum()} without")


if __name__ == "__main__":
    main()
