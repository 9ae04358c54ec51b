"""The daily retrain's stages for one symbol, free of Dagster: the assets only wire them."""
