"""Building blocks the layers are made of (secure bucket, generated secret, IAM documents, GPU host, Lambda packaging)."""
