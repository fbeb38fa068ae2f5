"""Training and evaluation of CAMA-BC: Context Alignment, then Backchannel Alignment.

Modules:

- ``data``: samples to batches, and the data order of every epoch.
- ``optim``: parameter groups and the per-epoch learning-rate decay.
- ``stages``: the losses of the two stages.
- ``loop``: the Accelerate training loop with early stopping.
- ``checkpoint``: safetensors weights and the state for exact resume.
- ``evaluation``: prediction over a split.
- ``runner``: one run, or several seeds, end to end.
- ``run_dir``: the run-directory layout and ``load_trained_model``.
- ``tokenizer``: WordPiece tokenizers trained on a corpus.
"""

from camabc_core.training.run_dir import load_trained_model

__all__ = ["load_trained_model"]
