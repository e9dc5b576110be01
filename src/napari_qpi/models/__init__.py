"""Models (torch): stage-1 kernel VAE, stage-2 aligned encoder, one-step baseline,
training and shipped weights."""
