"""`gsimclr embed`: a trained encoder put to use -- images in, P1/P2/P3 embeddings out."""
