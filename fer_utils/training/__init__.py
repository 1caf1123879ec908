"""Face cache → trained model: splits by protocol, the paper CNN, training, evaluation and the run directory."""
