"""Media in: dataset layouts → :class:`~fer_utils.data.datasets.Sample` lists, and the synthetic demo set."""
