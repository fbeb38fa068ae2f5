"""Built-in dataset readers, registered under the names used in recipes (``data.dataset``).

=============  ==========================================================================
name           corpus
=============  ==========================================================================
``backspeech`` BACKSpeech: utterance transcripts with inline ``[text(BC/category)]`` tags
``backcast``   BACKCast: word-level ``word.tsv`` and ``backchannel.tsv`` per dialogue
``swbd``       Switchboard-1: MS-State word alignments, binary labels from a rule
``manifest``   one's own corpus as JSON Lines (docs/datasets.md)
``stm``        STM transcripts and/or RTTM speaker turns, binary labels from a rule
=============  ==========================================================================
"""

from __future__ import annotations

from camabc_core.hookspecs import Register, hookimpl
from camabc_plugins.datasets.backcast import BackcastReader
from camabc_plugins.datasets.backspeech import BackspeechReader
from camabc_plugins.datasets.manifest import ManifestReader
from camabc_plugins.datasets.stm import StmReader
from camabc_plugins.datasets.switchboard import SwitchboardReader

DATASET_READERS = {
    "backspeech": BackspeechReader,
    "backcast": BackcastReader,
    "swbd": SwitchboardReader,
    "manifest": ManifestReader,
    "stm": StmReader,
}


@hookimpl
def register_datasets(register: Register) -> None:
    """Register every built-in reader; each factory takes the reader's keyword options."""
    for name, reader_class in DATASET_READERS.items():
        register(name, reader_class)
