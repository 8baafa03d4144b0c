"""Experiment protocols built from biolearn parts, shared by the paper recipes in models/.

The image-presentation STDP protocol of Diehl & Cook 2015 (Front. Comput. Neurosci. 9:99) and
Hao et al. 2020 (Neural Networks 121:387):

* :mod:`biolearn.protocols.image_stdp`: population names, the ``presentation`` and ``output``
  config sections, network pieces and :class:`~biolearn.protocols.image_stdp.Presenter`, which
  shows one image (rest, Poisson input, "fewer than 5 spikes → raise the intensity and present
  again").
* :mod:`biolearn.protocols.trainer`: :func:`~biolearn.protocols.trainer.run_protocol`, the whole
  run: training phases, running accuracy, checkpoints, labelling, test, every output file.
* :mod:`biolearn.protocols.evaluation`: the test phase, in blocks with their own RNG streams
  spread over forked worker processes, its spike file and its sanity warnings.
* :mod:`biolearn.protocols.checkpoint`: simulation state and loop position for ``--resume``.
"""
