"""Built-in aligners: ``mma`` (CAMA-BC), ``praveen``, ``sun`` and ``none``.

Every factory has the signature ``from_spec(spec: AlignerSpec, encoders: Mapping[Modality, Encoder])``;
the model builds the aligner with ``registry.create("aligner", name, spec=spec, encoders=encoders)``.
"""

from __future__ import annotations

from camabc_core.hookspecs import Register, hookimpl
from camabc_plugins.aligners.baselines import (
    CrossSelfAttentionAligner,
    JointCrossAttentionAligner,
    ProjectionAligner,
)
from camabc_plugins.aligners.common import CrossAttention, masked_mean
from camabc_plugins.aligners.mma import MultiLayerAligner

__all__ = [
    "CrossAttention",
    "CrossSelfAttentionAligner",
    "JointCrossAttentionAligner",
    "MultiLayerAligner",
    "ProjectionAligner",
    "masked_mean",
]


@hookimpl
def register_aligners(register: Register) -> None:
    register("mma", MultiLayerAligner.from_spec)
    register("praveen", JointCrossAttentionAligner.from_spec)
    register("sun", CrossSelfAttentionAligner.from_spec)
    register("none", ProjectionAligner.from_spec)
