"""Training one model on one task: the fit loop, losses, weight average, the time estimate and FLOP counts."""
