"""Training loop, callbacks, checkpoint I/O and the forecast/classification metrics (``metrics``)."""
