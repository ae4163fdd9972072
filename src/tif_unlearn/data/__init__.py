"""Data layer: records, loaders, TOFU splits, annotations, prompt encoding and token masks."""
