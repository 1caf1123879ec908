"""Many runs at once: the regularization ablation grid and the notebook pipeline behind ``fer run``."""
