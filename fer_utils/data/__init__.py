"""Media in: dataset layouts → :class:`~fer_utils.data.samples.Sample` lists, and the synthetic demo set."""
