"""Moved to ``higherhrnet_trt.core.errors``; this name stays for code written against 0.1."""

import sys

from higherhrnet_trt.core import errors as _moved

sys.modules[__name__] = _moved
