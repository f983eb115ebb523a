"""Loaders for paged and structured formats (PDF, DOCX, HTML, XLSX/CSV); the registry is in indexer.loaders."""
