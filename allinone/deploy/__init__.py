"""Model-level tools above ``allinone.nn``: what a subnet stores and how it leaves training.

- ``naming``: the bit-width class of a weight from its name.
- ``accounting``: parameters and stored bits of one subnet (every results table's sizes).
- ``export``: one subnet as a standalone packed low-bit file, and back (``load_packed_model``).
- ``ptq``: int8 post-training quantization of a float model (the no-retraining baseline).

Layering: ``allinone.quant`` (primitives) < ``allinone.nn`` (the model) < ``allinone.deploy``.
"""
