"""allinone: one training run, many deployable speech recognisers.

Subpackages:
  nn        Conformer encoder, stateless transducer decoder, joiner, the ASR model.
  losses    pruned RNN-T loss (pure torch; k2 when importable).
  decoding  transducer search (greedy, modified beam search).
  data      lhotse data module, augmentation, input validation.
  utils     checkpoints, logging, WER scoring, distributed helpers.
"""

__version__ = "0.1.0"
