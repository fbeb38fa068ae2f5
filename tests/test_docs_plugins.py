"""docs/plugins.md documents every hook with its exact signature, and its examples run."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from camabc_core import hookspecs
from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import AnimationRequest, AudioWindow, EncoderOutput
from camabc_core.recipe import AlignerSpec, EncoderSpec, FusionSpec, WindowSection

DOC_PATH = Path(__file__).parents[1] / "docs" / "plugins.md"
HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "camabc_spec"))


def doc_sections() -> dict[str, str]:
    """Map each "## " heading of the guide to the text below it."""
    sections: dict[str, str] = {}
    heading = None
    for line in DOC_PATH.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        elif heading is not None:
            sections[heading] += line + "\n"
    return sections


def hook_heading(hook: str) -> str:
    parameters = inspect.signature(getattr(hookspecs, hook)).parameters
    return f"{hook}({', '.join(parameters)})"


def typed_signature(hook: str) -> str:
    """Return e.g. "def register_encoders(register: Register) -> None" from the hookspec itself."""
    signature = inspect.signature(getattr(hookspecs, hook))
    # hookspecs uses postponed annotations, so each annotation is the source text, e.g. "Register".
    parameters = ", ".join(f"{name}: {p.annotation}" for name, p in signature.parameters.items())
    return f"def {hook}({parameters}) -> {signature.return_annotation}"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_hookspecs_found():
    assert len(HOOKS) == 6


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_with_signature(hook):
    sections = doc_sections()
    assert hook_heading(hook) in sections
    blocks = python_blocks(sections[hook_heading(hook)])
    assert blocks[0].strip() == typed_signature(hook)


def test_documented_hooks_exist():
    documented = [heading.split("(")[0] for heading in doc_sections() if heading.startswith("register_")]
    assert sorted(documented) == HOOKS


def load_example(hook: str, registry) -> types.ModuleType:
    """Run the hook section's example as a module and register it as a plugin."""
    (source,) = [block for block in python_blocks(doc_sections()[hook_heading(hook)]) if "@hookimpl" in block]
    module = types.ModuleType(f"plugins_doc_example_{hook}")
    exec(compile(source, f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    registry.register_plugin(module, name=f"doc-{hook}")
    assert registry.failures() == []
    return module


def test_encoder_example(empty_registry):
    load_example("register_encoders", empty_registry)
    assert empty_registry.names("encoder") == ["framed-audio"]
    spec = EncoderSpec(name="framed-audio", config={"frame_size": 4})
    encoder = empty_registry.create("encoder", "framed-audio", spec=spec, window=WindowSection())
    samples = np.arange(10, dtype=np.float32)
    window = AudioWindow(samples=samples, padding=np.zeros(10, bool), sample_rate=16000)
    output = encoder(**encoder.preprocess([window]))
    # 10 samples in frames of 4: two frames, the last two samples dropped.
    assert [tuple(state.shape) for state in output.hidden_states] == [(1, 2, 4), (1, 2, 4)]
    assert output.hidden_states[0][0, 1].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert encoder.num_layers + 1 == len(output.hidden_states)


def test_aligner_example(empty_registry):
    load_example("register_aligners", empty_registry)
    assert empty_registry.names("aligner") == ["mean-pool"]
    encoders = {"audio": types.SimpleNamespace(hidden_size=5), "text": types.SimpleNamespace(hidden_size=3)}
    aligner = empty_registry.create(
        "aligner", "mean-pool", spec=AlignerSpec(name="mean-pool", projection_size=6), encoders=encoders
    )
    audio_states = torch.zeros(2, 3, 5)
    audio_states[:, 2] = 100.0  # padding, masked out below
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    outputs = {
        "audio": EncoderOutput(hidden_states=(audio_states, audio_states), attention_mask=mask),
        "text": EncoderOutput(hidden_states=(torch.ones(2, 4, 3),) * 2, attention_mask=torch.ones(2, 4)),
    }
    result = aligner(outputs)
    assert aligner.embedding_names == ("audio", "text")
    assert float(result.loss) == 0.0
    assert tuple(result.embeddings["audio"].shape) == (2, 6)
    # The masked mean of the audio states is zero, so the projection returns its bias.
    torch.testing.assert_close(result.embeddings["audio"][0], aligner.projections["audio"].bias)


def test_fusion_example(empty_registry):
    load_example("register_fusions", empty_registry)
    aligner = types.SimpleNamespace(embedding_names=("audio", "text"), embedding_size=2)
    fusion = empty_registry.create("fusion", "average", spec=FusionSpec(name="average"), aligner=aligner)
    fused = fusion({"audio": torch.tensor([[1.0, 2.0]]), "text": torch.tensor([[3.0, 6.0]])})
    assert fusion.output_size == 2
    assert fused.tolist() == [[2.0, 4.0]]


def test_dataset_example(empty_registry, tmp_path):
    load_example("register_datasets", empty_registry)
    (tmp_path / "dialogue1.tsv").write_text(
        "word\tA\t0.0\t0.4\t그래서\nword\tA\t0.4\t0.9\tyesterday\nbc\tB\t0.95\t1.2\tCONTINUER\n",
        encoding="utf-8",
    )
    (conversation,) = empty_registry.create("dataset", "tsv-dialogues").load(tmp_path)
    assert conversation.id == "dialogue1"
    assert conversation.speakers == ("A", "B")
    assert [word.text for word in conversation.words] == ["그래서", "yesterday"]
    assert conversation.backchannels[0].listener == "B"
    assert conversation.backchannels[0].start == 0.95
    assert conversation.backchannels[0].category == "CONTINUER"
    assert conversation.audio_path == tmp_path / "dialogue1.wav"

    with (tmp_path / "dialogue1.tsv").open("a", encoding="utf-8") as table:
        table.write("laugh\tB\t1.3\t1.5\n")
    with pytest.raises(CorpusFormatError, match=r"dialogue1\.tsv:4: expected kind"):
        empty_registry.create("dataset", "tsv-dialogues").load(tmp_path)
    (lenient,) = empty_registry.create("dataset", "tsv-dialogues", skip_malformed=True).load(tmp_path)
    assert len(lenient.words) == 2


def test_animator_example(empty_registry, tmp_path):
    load_example("register_animators", empty_registry)
    reference = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    animator = empty_registry.create("animator", "still")
    request = AnimationRequest(
        reference=reference,
        reference_path=tmp_path / "reference.png",
        audio=np.zeros(1920, np.float32),
        audio_path=tmp_path / "speech.wav",
        sample_rate=16000,
        fps=25,
        num_frames=3,
    )
    frames = np.stack(list(animator.animate(request)))
    assert frames.shape == (3, 4, 5, 3)
    assert frames.dtype == np.uint8
    assert (frames[2] == reference).all()


def test_reference_generator_example(empty_registry):
    load_example("register_reference_generators", empty_registry)
    generator = empty_registry.create("reference_generator", "flat-colour")
    image = generator.generate("a listener", seed=7, width=5, height=4, attributes={})
    again = generator.generate("a listener", seed=7, width=5, height=4, attributes={})
    assert image.shape == (4, 5, 3)
    assert image.dtype == np.uint8
    assert (image == again).all()
    assert len(np.unique(image)) == 1
