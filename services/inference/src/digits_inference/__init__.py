"""DIGITS inference service: classify images with a model job's snapshots."""
