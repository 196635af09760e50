"""What mmdistkd's command-line tools share: reading training runs, synthetic batches, running training
stages, tables and plots, and the analyses behind ``tools/``.

Nothing here is needed to train: ``import mmdistkd`` does not import this package.
"""
