# Two commands for a newcomer (see README):
#   make demo   set up .venv, export the embedded default model, run it on the bundled sample (CPU)
#   make test   set up .venv (if needed) and run the test suite; .ci/run calls exactly this
#
# .venv-triton (make triton-setup) holds PyTriton for 'higherhrnet-trt serve': PyTriton needs
# numpy < 2 and its server's Python backend links libpython, so it gets its own environment made
# from the system Python (/usr/bin/python3 where there is one). The tests start servers from it.
#
# torch is pinned to 2.13.0: on our CI machines that version installs from a local CPU wheel, while
# an unpinned torch would pull a multi-GB CUDA build. Override TORCH_SPEC elsewhere, e.g.
#   make demo TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= export,quantize,tensorrt-rtx,kernels-ci,cv,eval,bench,openvino,triton,dev
TRITON_VENV ?= .venv-triton
TRITON_PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo $(PYTHON))
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.py Makefile | cksum | cut -d' ' -f1)
TRITON_STAMP := $(TRITON_VENV)/.installed-$(shell cat setup.py Makefile | cksum | cut -d' ' -f1)
OUT ?= outputs/demo
# ROS 2 (extra "ros") lives in a venv of its own: the PyPI ROS wheels install a .pth that re-launches
# every Python started from their environment (to set LD_LIBRARY_PATH); .venv stays free of that.
ROS_VENV ?= .venv-ros
ROS_STAMP := $(ROS_VENV)/.installed-$(shell cat setup.py Makefile | cksum | cut -d' ' -f1)

.PHONY: setup triton-setup ros-setup demo test lint clean

setup: $(STAMP)

ros-setup: $(ROS_STAMP)

$(STAMP): setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

triton-setup: $(TRITON_STAMP)

$(TRITON_STAMP): setup.py Makefile
	test -x $(TRITON_VENV)/bin/python || $(TRITON_PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel
	$(TRITON_VENV)/bin/python -m pip install -q -e ".[triton-server]"
	rm -f $(TRITON_VENV)/.installed-* && touch $@

# Only the runtime's needs and the ROS wheels (~500 MB, 45 s from PyPI on an empty cache): no torch.
$(ROS_STAMP): setup.py Makefile
	test -x $(ROS_VENV)/bin/python || $(PYTHON) -m venv $(ROS_VENV)
	$(ROS_VENV)/bin/python -m pip install -q -e ".[ros]"
	rm -f $(ROS_VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/higherhrnet-trt demo --save-dir $(OUT)

# tests/test_ros2.py runs the node and its peers with the ROS venv's Python; the Triton tests
# run serve from the Triton venv.
test: setup triton-setup ros-setup
	HIGHERHRNET_TRT_TRITON_PYTHON=$(TRITON_VENV)/bin/python HIGHERHRNET_TRT_ROS_PYTHON=$(abspath $(ROS_VENV))/bin/python $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(TRITON_VENV) $(ROS_VENV) outputs build *.egg-info
