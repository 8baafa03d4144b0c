"""User model definitions for ``configs/custom_neuron_file.yaml``: an example of a definitions file.

A config of the ``network`` recipe names Python files under ``params.definitions`` (paths relative
to the config file); every :class:`~biolearn.engine.NeuronModel` and
:class:`~biolearn.engine.SynapseModel` defined at module level becomes usable by its ``name``
(``model: eif`` in a population, ``rule: triplet_stdp`` in a projection). The file is run as a
plain Python module, so it can compute its definitions; nothing needs installing.

Definitions use Brian2's equation syntax with biolearn's units (ms, mV, pA, nS, pF); a parameter
default carries its unit (``"20 ms"``), a plain number is dimensionless. ``biolearn run`` checks
every definition (identifiers, units, integration method, reset) before the network is built.
"""

from biolearn.engine import NeuronModel, SynapseModel

#: Exponential integrate-and-fire neuron (Fourcaud-Trocmé, Hansel, van Vreeswijk & Brunel 2003,
#: J Neurosci 23:11628): a leaky membrane with an exponential spike-initiation current of slope
#: factor ``Delta_T`` around ``V_T``; the upswing is cut at ``V_peak`` and reset to ``V_r``.
#: ``I_syn`` is an exponentially decaying synaptic input in mV (projections target it).
#: Illustrative parameter values.
EIF = NeuronModel(
    name="eif",
    equations="""
        dv/dt = (E_L - v + Delta_T*exp((v - V_T)/Delta_T) + I_ext + I_syn)/tau_m : volt (unless refractory)
        dI_syn/dt = -I_syn/tau_syn : volt
    """,  # noqa: E501
    threshold="v > V_peak",
    reset="v = V_r",
    refractory="t_ref",
    method="euler",  # the exponential term is non-linear: 'exact' would be refused
    parameters={"tau_m": "10 ms", "E_L": "-65 mV", "V_T": "-50 mV", "Delta_T": "2 mV",
                "V_peak": "-30 mV", "V_r": "-68 mV", "I_ext": "0 mV", "tau_syn": "5 ms",
                "t_ref": "2 ms"},
    init={"v": "E_L"},
)

#: Non-linear temporally asymmetric Hebbian plasticity (Gütig, Aharonov, Rotter & Sompolinsky
#: 2003, J Neurosci 23:3697): pair STDP whose steps depend on the weight through an exponent mu,
#: from additive (mu = 0, Song et al. 2000) to multiplicative (mu = 1, van Rossum et al. 2000).
#: With x = w/w_max in [0, 1], a post spike potentiates by lam·(1 - x)^mu·apre and a pre spike
#: depresses by lam·alpha·x^mu·apost (both times w_max); traces decay with tau. The weight is the
#: projection's increment of its target (here mV of I_syn); illustrative parameter values.
GUTIG_STDP = SynapseModel(
    name="gutig_stdp",
    model="""
        w : 1
        dapre/dt = -apre/tau : 1 (event-driven)
        dapost/dt = -apost/tau : 1 (event-driven)
    """,
    on_pre="""
        w = clip(w - lam*alpha*w_max*(w/w_max)**mu*apost, 0, w_max)
        apre += 1
    """,
    on_post="""
        w = clip(w + lam*w_max*(1 - w/w_max)**mu*apre, 0, w_max)
        apost += 1
    """,
    parameters={"lam": 0.01, "alpha": 1.05, "mu": 0.4, "tau": "20 ms", "w_max": 4.0},
    learning_rates=("lam",),
)
