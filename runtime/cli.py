"""Moved to ``higherhrnet_trt.cli``; ``python -m higherhrnet_trt.runtime.cli`` still runs the CLI."""

import sys

if __name__ == "__main__":
    from higherhrnet_trt.cli.main import main

    sys.exit(main())
else:
    import higherhrnet_trt.cli.main as _moved

    sys.modules[__name__] = _moved
