"""``python -m napari_qpi.cli``: the napari-qpi command."""

import sys

from . import main

sys.exit(main())
