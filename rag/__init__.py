"""Online side of ChiMed-RAG: retrieve → fuse → prompt → generate → cite."""
