"""biolearn's neuron model library: every built-in neuron is a :class:`NeuronModel` definition.

The leaky integrate-and-fire family (:func:`lif_model`) is one definition per variant of synapse
model, integration method, threshold adaptation and voltage floor; AdEx, Izhikevich and the
quadratic integrate-and-fire neuron are plain definitions a user could have written. Units as in
:mod:`biolearn.engine.units` (ms, mV, pA, nS, pF).
"""

from __future__ import annotations

from functools import cache

from biolearn.engine.definitions import NeuronModel

#: Parameters of every LIF variant (Brette et al. 2007; Diehl & Cook 2015; Hao et al. 2020).
LIF_PARAMETERS = {
    "tau_m": "20 ms", "v_rest": "-60 mV", "v_reset": "-60 mV", "v_thresh": "-50 mV",
    "t_ref": "5 ms", "tau_e": "5 ms", "tau_i": "10 ms", "e_e": "0 mV", "e_i": "-80 mV",
    "v_floor": "-inf mV", "i_bias": "0 mV", "theta_plus": "0 mV", "tau_theta": "inf ms",
    "theta_offset": "0 mV",
    # Hao et al. 2020's θ rule: θ += θ₊·10 mV / max(|θ − 10 mV|, 1e-3 mV)
    "theta_ten": "10 mV", "theta_eps": "0.001 mV",
}


@cache
def lif_model(synapse: str = "conductance", integration: str = "euler", theta_rule: str = "none",
              floor: bool = False, same_tau: str = "") -> NeuronModel:
    """One LIF variant as a definition.

    Current based (Brette et al. 2007 CUBA): ``τm dv/dt = v_rest + i_bias − v + ge + gi`` with
    ge, gi in mV; conductance based (COBA; Diehl & Cook 2015): ``τm dv/dt = (v_rest + i_bias − v)
    + ge (e_e − v) + gi (e_i − v)`` with ge, gi in units of the leak conductance; both decay with
    τe, τi. ``integration``: ``"euler"`` (forward Euler), ``"exact"`` (exact for current based,
    exponential Euler for conductance based), ``"euler_expsyn"`` (Euler for v, exact decay of ge, gi
    after it: GeNN's EXPDECAY, as in Hao et al.'s code). ``theta_rule``: ``"add"`` (θ += θ₊ per
    spike, Diehl & Cook) or ``"hao"`` (θ += θ₊·10 mV/|θ − 10 mV|, Hao et al. 2020); θ decays exactly
    with τθ. ``"hao_f32"`` keeps θ in single precision, as Hao et al.'s GeNN code does:
    ``θ ← float32(θ − θ·dt/τθ)`` every step (bit for bit their float32 decay) and
    ``θ ← float32(θ + …)`` per spike (the increment rounded once; their fast-math float division
    differs in the last bit for a few increments), so a decay smaller than half of θ's float32
    spacing is lost (always, for dt/τθ ≤ 2⁻²⁵).
    ``floor``: v is bounded below by ``v_floor`` after every step (Hao et al.: −100 mV).
    """
    g = "volt" if synapse == "current" else "1"
    if synapse == "current":
        dv = "(v_rest + i_bias - v + ge + gi)/tau_m"
    else:
        dv = "((v_rest + i_bias - v) + ge*(e_e - v) + gi*(e_i - v))/tau_m"
    eqs = f"dv/dt = {dv} : volt (unless refractory)\n"
    after = []
    if integration == "euler_expsyn":
        eqs += f"ge : {g}\ngi : {g}\n"
        after += ["ge = ge*exp(-dt/tau_e)", "gi = gi*exp(-dt/tau_i)"]
        method = "euler"
    else:
        te = "tau_m" if "e" in same_tau else "tau_e"
        ti = "tau_m" if "i" in same_tau else "tau_i"
        eqs += f"dge/dt = -ge/{te} : {g}\ndgi/dt = -gi/{ti} : {g}\n"
        method = {"euler": "euler", "exact": "exact" if synapse == "current"
                  else "exponential_euler"}[integration]
    eqs += "theta : volt\n"
    reset = ["v = v_reset"]
    hao = "theta_plus*theta_ten/clip(abs(theta - theta_ten), theta_eps, inf*mV)"
    if theta_rule == "hao_f32":  # GeNN's Euler step of θ and its spike increment, in float32
        after.append("theta = float32(theta - theta/tau_theta*dt)")
        reset.append(f"theta = float32(theta + {hao})")
    elif theta_rule != "none":
        after.append("theta = theta*exp(-dt/tau_theta)")
        reset.append("theta += theta_plus" if theta_rule == "add" else f"theta += {hao}")
    if floor:
        after.append("v = clip(v, v_floor, inf*mV)")
    name = f"lif_{'cuba' if synapse == 'current' else 'coba'}_{integration}"
    name += "" if theta_rule == "none" else f"_theta_{theta_rule}"
    name += "_floor" if floor else ""
    name += f"_tau_m_{same_tau}" if same_tau else ""
    return NeuronModel(
        name=name, equations=eqs, threshold="v > v_thresh + theta - theta_offset",
        reset="\n".join(reset), refractory="t_ref", method=method,
        parameters=dict(LIF_PARAMETERS), init={"v": "v_rest"},
        rest={"v": "v_rest", "ge": "0", "gi": "0"}, after_update="\n".join(after),
        frozen={"tau_theta": float("inf"), "theta_plus": 0.0})


#: Adaptive exponential integrate-and-fire (Brette & Gerstner 2005, J Neurophysiol 94:3637),
#: their Table 1 values; current-based exponential synapse ``I_syn`` (pA) for projections.
ADEX = NeuronModel(
    name="adex",
    equations="""
        dv/dt = (g_L*(E_L - v) + g_L*Delta_T*exp((v - V_T)/Delta_T) + I_ext + I_syn - w)/C : volt (unless refractory)
        dw/dt = (a*(v - E_L) - w)/tau_w : amp
        dI_syn/dt = -I_syn/tau_syn : amp
    """,  # noqa: E501
    threshold="v > V_peak", reset="v = V_r\nw += b", refractory="t_ref", method="euler",
    parameters={"C": "281 pF", "g_L": "30 nS", "E_L": "-70.6 mV", "V_T": "-50.4 mV",
                "Delta_T": "2 mV", "tau_w": "144 ms", "a": "4 nS", "b": "80.5 pA",
                "V_r": "-70.6 mV", "V_peak": "-40.4 mV", "I_ext": "0 pA", "tau_syn": "5 ms",
                "t_ref": "0 ms"},
    init={"v": "E_L"})

#: Izhikevich 2003 (IEEE TNN 14:1569) simple model, regular spiking by default (a, b, c, d);
#: ``I`` drive and ``I_syn`` (exponential synapse) in mV/ms-scaled units as in the paper.
IZHIKEVICH = NeuronModel(
    name="izhikevich",
    equations="""
        dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u + I_ext + I_syn)/ms : volt
        du/dt = a*(b*v - u)/ms : volt
        dI_syn/dt = -I_syn/tau_syn : volt
    """,
    threshold="v >= v_peak", reset="v = c\nu += d", method="euler",
    parameters={"a": 0.02, "b": 0.2, "c": "-65 mV", "d": "8 mV", "v_peak": "30 mV",
                "I_ext": "0 mV", "tau_syn": "5 ms"},
    init={"v": "c", "u": "b*c"})

#: Quadratic integrate-and-fire (Latham et al. 2000; Ermentrout & Kopell 1986 normal form):
#: ``τm dv/dt = k (v − v_rest)(v − v_crit) + I_ext + I_syn``, spike at ``v_peak``.
QIF = NeuronModel(
    name="qif",
    equations="""
        dv/dt = (k*(v - v_rest)*(v - v_crit) + I_ext + I_syn)/tau_m : volt (unless refractory)
        dI_syn/dt = -I_syn/tau_syn : volt
    """,
    threshold="v > v_peak", reset="v = v_reset", refractory="t_ref", method="euler",
    parameters={"tau_m": "10 ms", "k": "0.04 1/mV", "v_rest": "-65 mV", "v_crit": "-50 mV",
                "v_peak": "30 mV", "v_reset": "-70 mV", "I_ext": "0 mV", "tau_syn": "5 ms",
                "t_ref": "0 ms"},
    init={"v": "v_rest"})

#: Built-in neuron models by name (for configs: ``neuron: adex``).
NEURON_MODELS: dict[str, NeuronModel] = {m.name: m for m in (ADEX, IZHIKEVICH, QIF)}
