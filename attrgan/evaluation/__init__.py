"""The attribute regressor, metrics, Table-1 evaluation, the report, plots."""
