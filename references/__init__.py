"""Tools of this repository, not of the product (as torchvision's references/): training the demo
network (``train``) on the generated scenes of ``benchmarks.scenes`` and silver real people.

The product packages (core, export, engine, decode, kernels, runtime, cli) never import this
package. Needs torch (extra ``export``).
"""
