"""Exceptions that carry a message meant for the user: what failed, on which value, what to do."""


class CamabcError(Exception):
    """Base class; the CLI prints these without a traceback."""


class RecipeError(CamabcError):
    """A recipe is invalid (unknown keys, wrong types, unknown component names)."""


class PluginError(CamabcError):
    """A plugin failed to load or registered something invalid."""


class CorpusFormatError(CamabcError):
    """A corpus file is malformed; the message names the file and line."""


class MediaError(CamabcError):
    """A media file cannot be decoded; the message names the file."""


class CheckpointError(CamabcError):
    """A checkpoint file is missing, truncated, corrupt or does not fit the model; the message names it."""
