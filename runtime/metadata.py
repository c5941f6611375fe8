"""Moved to ``higherhrnet_trt.core.metadata``; this name stays for code written against 0.1."""

import sys

from higherhrnet_trt.core import metadata as _moved

sys.modules[__name__] = _moved
