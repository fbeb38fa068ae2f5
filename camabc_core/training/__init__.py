"""Training and evaluation of CAMA-BC: Context Alignment, then Backchannel Alignment.

Modules: ``data`` (samples to batches, data order), ``optim`` (parameter groups, learning-rate
decay), ``stages`` (the two stages' losses), ``loop`` (the Accelerate training loop, early stopping),
``checkpoint`` (safetensors weights and exact-resume state), ``evaluation`` (prediction over a split),
``runner`` (one run or several seeds end to end), ``run_dir`` (run-directory layout and
``load_trained_model``), ``tokenizer`` (WordPiece tokenizers trained on a corpus).
"""

from camabc_core.training.run_dir import load_trained_model

__all__ = ["load_trained_model"]
