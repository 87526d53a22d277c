"""Diagnostics: look inside a recurrent network — gradient flow through time and the LSTM's gates.

- :func:`~lstmkit.diagnostics.gradients.gradient_flow` — ``‖∂L/∂h_t‖`` and ``‖∂L/∂c_t‖`` for every step t
  of a loss read at the last step; :func:`~lstmkit.diagnostics.gradients.gradient_flow_study` compares
  a tanh RNN, a GRU and an LSTM fresh and trained (the vanishing gradient made visible)
- :func:`~lstmkit.diagnostics.gates.trace_gates` — i, f, g, o, c, h of every unit at every step, for any
  variant; :func:`~lstmkit.diagnostics.gates.plot_gates` draws them as heatmaps
- :func:`~lstmkit.diagnostics.gates.cell_activation_view` — per-token cell state of chosen units, with
  HTML and PNG renderers (Karpathy et al. 2015's character colouring)
- ``lstmkit inspect gradients | gates`` (:mod:`lstmkit.diagnostics.cli`) writes the PNGs and CSVs

matplotlib is imported only by the plotting functions.
"""

from __future__ import annotations

from lstmkit.diagnostics.gates import (
    GateTrace,
    cell_activation_view,
    gate_step,
    gate_study,
    gates_frame,
    plot_cell_activations,
    plot_gates,
    render_cell_activations_html,
    trace_gates,
)
from lstmkit.diagnostics.gradients import (
    GradientFlow,
    adding_problem,
    gradient_flow,
    gradient_flow_study,
    plot_gradient_flow,
    state_gradients,
)

__all__ = [
    "GateTrace",
    "GradientFlow",
    "adding_problem",
    "cell_activation_view",
    "gate_step",
    "gate_study",
    "gates_frame",
    "gradient_flow",
    "gradient_flow_study",
    "plot_cell_activations",
    "plot_gates",
    "plot_gradient_flow",
    "render_cell_activations_html",
    "state_gradients",
    "trace_gates",
]
