"""The ML half of the secure pipeline: policy, data, model, training, evaluation, persistence."""
