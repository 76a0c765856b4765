"""The pure core: names, the index model, parsing and rendering of the simple API.

Bytes and values in, values out: no event loop, no HTTP, no disk, no database.
"""
