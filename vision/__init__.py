"""Image intake checks, OCR, image embeddings and product matching."""
