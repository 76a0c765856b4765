"""bodega: a streaming, verified, pull-through cache of the Python Package Index."""

__version__ = "0.1.0"
