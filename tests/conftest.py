"""Shared fixtures: a fresh plugin registry per test, fake installed distributions, and the
training excerpt with one torch thread for the training tests.

``fake_plugins`` replaces ``importlib.metadata.distributions`` so the registry finds only the
distributions a test declares; their plugin modules are written to a temporary folder on sys.path.
Nothing is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from camabc_core.plugin_sources import DISABLE_ENV, ENTRY_POINT_GROUP, STRICT_ENV
from camabc_core.registry import Registry, reset_registry


class FakeDistribution(importlib.metadata.Distribution):
    """An installed distribution made of in-memory METADATA and entry_points.txt."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        lines = "".join(f"{entry_name} = {value}\n" for entry_name, value in entry_points.items())
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": f"[{ENTRY_POINT_GROUP}]\n{lines}",
        }

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: str | Path) -> Path:
        return Path(path)


class FakePlugins:
    """Declares fake distributions and writes their plugin modules; see the ``fake_plugins`` fixture."""

    def __init__(self, module_dir: Path) -> None:
        self.module_dir = module_dir
        self.distributions: list[FakeDistribution] = []
        self.module_names: list[str] = []

    def add_module(self, name: str, source: str) -> None:
        """Write module ``name`` (importable at once) with the given, dedented source."""
        (self.module_dir / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        self.module_names.append(name)
        importlib.invalidate_caches()  # the import system caches directory listings

    def add_distribution(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        """Declare an installed distribution with ``camabc`` entry points {entry point name: module}."""
        self.distributions.append(FakeDistribution(name, version, entry_points))


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give every test its own process-wide registry and a clean plugin environment."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakePlugins]:
    """Make the fake distributions the only installed ones (the real camabc entry points vanish)."""
    module_dir = tmp_path / "fake_plugin_modules"
    module_dir.mkdir()
    fakes = FakePlugins(module_dir)
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **_: list(fakes.distributions))
    yield fakes
    for name in fakes.module_names:
        sys.modules.pop(name, None)


@pytest.fixture
def empty_registry(fake_plugins: FakePlugins) -> Registry:
    """A registry that finds no installed plugin; tests register fake plugins by hand."""
    return Registry()


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Tiny models spend their time in per-op overhead, which extra threads only add to."""
    import torch  # imported here, not at the top, because it is slow to import

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The training excerpt as a media manifest and its tokenizer directory, written once per module."""
    from training_helpers import write_excerpt_tokenizer, write_media_manifest

    directory = tmp_path_factory.mktemp("corpus")
    return write_media_manifest(directory / "media"), write_excerpt_tokenizer(directory / "tokenizer")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is available."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch  # imported only when a gpu test is collected, because it is slow to import

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)
