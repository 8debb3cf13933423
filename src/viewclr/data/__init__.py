"""Datasets, protocols, decoding, clip sampling, the prepared cache and device-side augmentation."""
