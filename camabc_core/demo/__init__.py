"""``camabc demo``: the whole pipeline on the bundled real phone call, on a CPU, in a few minutes.

Steps: build a corpus from the call (``corpus``), train a tokenizer and a tiny CAMA-BC with Context
Alignment then Backchannel Alignment, evaluate it and write the run's report, run ``camabc predict``
on the call, and describe every output (``pipeline``, ``summary``). The model has random-weight
encoders of two layers and trains on 30 seconds of audio, so its scores demonstrate the pipeline,
not the method.
"""

from camabc_core.demo.corpus import SAMPLE_DIR, DemoCorpus, build_demo_corpus
from camabc_core.demo.pipeline import DEMO_RECIPE, DemoResult, DemoSettings, run_demo

__all__ = [
    "DEMO_RECIPE",
    "SAMPLE_DIR",
    "DemoCorpus",
    "DemoResult",
    "DemoSettings",
    "build_demo_corpus",
    "run_demo",
]
