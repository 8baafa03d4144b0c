"""Paper recipes built from biolearn parts. Installed as ``biolearn.models``.

Each module registers its recipe(s) with :func:`biolearn.registry.register`; the registry imports
every module of this package on first use, so adding a file here is all a new recipe needs.
"""
