"""camabc core: interfaces, plugin manager, data model, windowing, model assembly, training and CLI."""

__version__ = "0.1.0"
