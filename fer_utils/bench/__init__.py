"""``fer bench``: measured speed of inference, training and preprocessing, written as JSON + Markdown."""
