"""``python -m higherhrnet_trt.cli``: the same as the ``higherhrnet-trt`` command."""

import sys

from .main import main

sys.exit(main())
