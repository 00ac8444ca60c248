"""`python -m serving.batch` (or `spark-submit serving/batch/__main__.py`): see serving.batch."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (spark-submit): find `serving` beside it
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving.batch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
