"""Running models: the thread and device runtime, `Predictor` over saved models,
and the small classifiers `training.train` fits.
"""
