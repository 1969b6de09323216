"""Print cnfs_geo's intra-package import graph and its architecture violations.

    python tests/import_graph.py [--tree]

One line per module in pipeline order: name, line count, the package modules it imports
(with ``--tree``, first the modules with their line count and responsibility).
The rules and the pipeline order are in tests/test_architecture.py (ORDER, KNOWN).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_architecture import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
