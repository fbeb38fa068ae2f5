"""A third-party plugin package, installed with pip, shows up in ``camabc plugins`` and builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).parent / "plugin_packages" / "camabc-example-plugin"

BUILD_ENCODER = """
import numpy as np
from camabc_core.interfaces import AudioWindow
from camabc_core.recipe import EncoderSpec, WindowSection
from camabc_core.registry import get_registry

spec = EncoderSpec(name="framed-audio", config={"frame_size": 4})
encoder = get_registry().create("encoder", "framed-audio", spec=spec, window=WindowSection())
window = AudioWindow(samples=np.arange(10, dtype=np.float32), padding=np.zeros(10, bool), sample_rate=16000)
output = encoder(**encoder.preprocess([window]))
print(type(encoder).__name__, [list(state.shape) for state in output.hidden_states])
print(output.hidden_states[0][0].tolist())
"""


@pytest.mark.slow
def test_installed_plugin_is_listed(tmp_path):
    # pip writes build files next to the sources, so it builds a copy.
    source = tmp_path / "camabc-example-plugin"
    shutil.copytree(PACKAGE_DIR, source)
    target = tmp_path / "site-packages"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
            "--no-index", "--target", str(target), str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )

    python_path = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    # The built-in plugins are disabled (by distribution name) so only the new package is imported.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(python_path), CAMABC_DISABLE_PLUGINS="camabc")
    listed = subprocess.run(
        [sys.executable, "-m", "camabc_core", "plugins", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    listing = json.loads(listed.stdout)
    assert listing["components"] == [
        {
            "kind": "encoder",
            "name": "framed-audio",
            "plugin": "example",
            "distribution": "camabc-example-plugin",
            "version": "0.1.0",
        }
    ]
    assert listing["failures"] == []
    assert {row["distribution"] for row in listing["disabled"]} == {"camabc"}

    built = subprocess.run(
        [sys.executable, "-c", BUILD_ENCODER],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 10 samples in frames of 4: two frames, the last two samples dropped.
    assert built.stdout.splitlines() == [
        "FramedAudioEncoder [[1, 2, 4], [1, 2, 4]]",
        "[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]",
    ]
