"""references/ holds scripts, not an installed part (as torchvision's references/): its modules are
imported here as the scripts import each other, by plain name with their folder on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

REFERENCES = Path(__file__).resolve().parents[2] / "references"
if str(REFERENCES) not in sys.path:
    sys.path.insert(0, str(REFERENCES))
