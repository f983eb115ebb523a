"""Answer generators: a real causal LM through transformers, and an LLM-free extractive composer."""
