"""HTTP API and command line of ChiMed-RAG."""
