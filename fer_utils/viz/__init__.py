"""Runs → pictures: plotly figures and tables, the Voila dashboard and the static HTML report."""
