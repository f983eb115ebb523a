"""Offline side of ChiMed-RAG: load → chunk → embed → write a persisted index directory."""
