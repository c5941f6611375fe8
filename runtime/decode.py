"""Moved to ``higherhrnet_trt.decode``; this name stays for code written against 0.1."""

import sys

import higherhrnet_trt.decode as _moved

sys.modules[__name__] = _moved
