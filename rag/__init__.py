"""Knowledge ingestion, tokenization, embeddings, the vector store, retrieval and answers."""
