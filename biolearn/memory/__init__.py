"""Associative memories and sparse distributed representations.

Submodules are imported on demand (``from biolearn.memory import sparsey``) so that importing
this package stays cheap:

* ``sparsey``   - Rinkus's Sparsey macs, Code Selection Algorithm and mac hierarchies;
* ``dendrites`` - Ahmad & Hawkins dendritic-segment statistics (false match, union, noise);
* ``dam`` and friends - dense associative memories.
"""
