"""The built-in dataset readers are reachable through the plugin registry by their recipe names."""

from __future__ import annotations

from pathlib import Path

import pytest

from camabc_core.errors import PluginError
from camabc_core.interfaces import DatasetReader
from camabc_core.registry import get_registry

DATA = Path(__file__).parent / "data"


def test_dataset_names_registered():
    names = get_registry().names("dataset")

    for name in ("backcast", "backspeech", "manifest", "stm", "swbd"):
        assert name in names


@pytest.mark.parametrize("name", ["backcast", "backspeech", "manifest", "stm", "swbd"])
def test_dataset_created_with_skip_option(name):
    reader = get_registry().create("dataset", name, skip_malformed=True)

    assert isinstance(reader, DatasetReader)
    assert reader.skip_malformed is True
    assert reader.skipped_lines == 0


def test_dataset_unknown_option_rejected():
    with pytest.raises(PluginError, match="max_seconds"):
        get_registry().create("dataset", "backspeech", max_seconds=1.0)


def test_dataset_reader_from_registry_loads():
    reader = get_registry().create("dataset", "stm", max_seconds=0.3)

    assert reader.load(DATA / "pyannote_call")[0].backchannels == ()
