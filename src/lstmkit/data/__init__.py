"""Data: bundled datasets (``datasets``), long frame → panel (``panel``), deseasonalisation
(``seasonality``). NumPy / pandas only; submodules are imported where they are used."""
