"""Serving through NVIDIA Triton Inference Server: model repositories (``triton-repo``), a local
server through PyTriton (``serve``) and the Python-backend pipeline model both use. The client is
the runtime's ``triton`` backend (runtime/backends/triton_backend.py)."""
