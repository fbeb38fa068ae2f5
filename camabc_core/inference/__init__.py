"""Inference with a trained model: offline timelines over a media file and online streaming.

``predict_timeline`` computes class probabilities at every speaker word end and on a regular grid,
and ``detect_moments`` picks the backchannel moments from them. ``StreamingPredictor`` computes the
same probabilities online from pushed audio, words and frames. ``run_prediction`` (in
``camabc_core.inference.pipeline``) is the whole ``camabc predict`` command, files and plot included.
"""

from camabc_core.inference.moments import BackchannelMoment, detect_moments
from camabc_core.inference.roles import resolve_roles
from camabc_core.inference.streaming import StreamingPredictor
from camabc_core.inference.timeline import Timeline, class_probabilities, predict_timeline
from camabc_core.inference.transcripts import load_transcript

__all__ = [
    "BackchannelMoment",
    "StreamingPredictor",
    "Timeline",
    "class_probabilities",
    "detect_moments",
    "load_transcript",
    "predict_timeline",
    "resolve_roles",
]
