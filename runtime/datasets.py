"""Moved to ``higherhrnet_trt.core.keypoints``; this name stays for code written against 0.1."""

import sys

from higherhrnet_trt.core import keypoints as _moved

sys.modules[__name__] = _moved
