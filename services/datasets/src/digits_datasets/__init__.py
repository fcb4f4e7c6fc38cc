"""digits-datasets: builds image-classification datasets (folders → RecordIO shards, mean, labels)."""
