"""Tools of this repository, not of the product (as torchvision's references/): training the demo
network (``train``) and generating the scenes it learns from and is measured on (``scenes``).

The product packages (core, export, engine, decode, kernels, runtime, cli) never import this
package; tests, benchmarks and ``benchmarks/gpu_check.sh`` do. Needs torch (extra ``export``).
"""
