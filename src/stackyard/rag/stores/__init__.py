"""Vector stores: where a collection's documents, chunks and vectors live."""
