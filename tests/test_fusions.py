from types import SimpleNamespace

import pytest
import torch

from camabc_core.errors import RecipeError
from camabc_core.recipe import FusionSpec
from camabc_plugins.fusions import ConcatFusion, HierarchicalFusion, SingleModalityFusion, register_fusions

MMA_NAMES = ("audio", "text", "video", "video<-text", "video<-audio", "text<-audio")


def aligner(names, size=4):
    return SimpleNamespace(embedding_names=tuple(names), embedding_size=size)


def embeddings(names, batch_size=2, size=4):
    """Embedding i is filled with the value i, so the concatenation order is visible."""
    return {name: torch.full((batch_size, size), float(index)) for index, name in enumerate(names)}


def test_hierarchical_concatenates_audio_anchored_embeddings():
    fusion = HierarchicalFusion.from_spec(FusionSpec(), aligner(MMA_NAMES))

    fused = fusion(embeddings(MMA_NAMES))

    # cat(ā, c̄_va, c̄_ta): audio (0), video<-audio (4), text<-audio (5).
    assert fusion.required_embeddings == ("audio", "video<-audio", "text<-audio")
    assert fusion.output_size == 12
    assert fused[0].tolist() == [0.0] * 4 + [4.0] * 4 + [5.0] * 4


def test_hierarchical_with_audio_and_text():
    fusion = HierarchicalFusion.from_spec(FusionSpec(), aligner(["audio", "text", "text<-audio"]))

    assert fusion.required_embeddings == ("audio", "text<-audio")
    assert fusion.output_size == 8


def test_hierarchical_needs_cross_attended_audio():
    with pytest.raises(RecipeError, match="fusion concat"):
        HierarchicalFusion.from_spec(FusionSpec(), aligner(["audio", "text", "video"]))
    with pytest.raises(RecipeError, match="needs the audio embedding"):
        HierarchicalFusion.from_spec(FusionSpec(), aligner(["text", "video", "video<-text"]))


def test_concat_uses_modality_embeddings_only():
    fusion = ConcatFusion.from_spec(FusionSpec(name="concat"), aligner(MMA_NAMES, size=3))

    fused = fusion(embeddings(MMA_NAMES, size=3))

    assert fusion.required_embeddings == ("audio", "text", "video")
    assert fused.shape == (2, 9)
    assert fused[1].tolist() == [0.0] * 3 + [1.0] * 3 + [2.0] * 3


def test_single_modality_fusion():
    factories = {}
    register_fusions(factories.__setitem__)

    fusion = factories["video_only"](spec=FusionSpec(name="video_only"), aligner=aligner(MMA_NAMES))

    assert isinstance(fusion, SingleModalityFusion)
    assert fusion.required_embeddings == ("video",)
    assert fusion(embeddings(MMA_NAMES))[0].tolist() == [2.0] * 4
    with pytest.raises(RecipeError, match="no text encoder"):
        factories["text_only"](spec=FusionSpec(name="text_only"), aligner=aligner(["audio"]))


def test_registered_fusion_names():
    factories = {}
    register_fusions(factories.__setitem__)

    assert sorted(factories) == ["audio_only", "concat", "hierarchical", "text_only", "video_only"]


def test_fusion_reports_missing_embedding():
    fusion = ConcatFusion.from_spec(FusionSpec(name="concat"), aligner(["audio", "text"]))

    with pytest.raises(KeyError, match="'text'"):
        fusion(embeddings(["audio"]))
