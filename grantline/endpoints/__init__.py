"""One module per endpoint, each with one public handler that reads as the pipeline."""
