"""Retrieval-augmented generation: collections of documents kept in sync with their sources,
vector stores, and dense, keyword and hybrid retrieval. Needs the ``rag`` extra."""
