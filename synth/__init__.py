"""Talking-head videos for audio-only corpora: ``python -m synth swbd`` and ``python -m synth audio``.

Each speaker gets a reference portrait (a ``ReferenceGenerator`` plugin: ``flux`` or ``cartoon``), which
an ``Animator`` plugin (``echomimic`` or ``cartoon``) drives with the speaker's audio, one mp4 per window
or per conversation side. A JSONL manifest records every job so reruns skip finished clips.
"""
