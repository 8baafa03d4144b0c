"""How biolearn's model definitions map onto other simulators' models, without those simulators.

* :mod:`biolearn.mapping.lif_family`: recognises the LIF variants of
  :func:`biolearn.engine.neurons.lif_model` and reads any population of one as a
  :class:`~biolearn.engine.LIF` (read by the NEST mapping, the SONATA circuit export, NIR and the
  torch bridge).
* :mod:`biolearn.mapping.nest_models`: NEST models, parameters, weights, delays and what NEST
  cannot express (read by the NEST backend and the SONATA circuit export).

The backends that run networks live in :mod:`biolearn.backends`; file formats in
:mod:`biolearn.io` use these mappings and never a backend.
"""
