"""Physical substrates: conductance devices, crossbars, update schemes, optical 4f systems.

Installed as ``biolearn.hardware``.
"""
