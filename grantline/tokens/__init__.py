"""Bearer secrets: generation, keyed digests, signing keys."""
