FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# torch first and pinned (the project is tested with 2.13.0).
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY indexer indexer
COPY rag rag
COPY api api
COPY corpus corpus
# Editable install: settings resolve corpus/ and indexes/ relative to /app.
RUN pip install -e .
EXPOSE 8000
CMD ["chimed-rag", "serve", "--host", "0.0.0.0", "--port", "8000"]
