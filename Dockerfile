# One image, two torch flavours. By default torch==2.13.0 comes from the default package index, whose Linux
# wheels bundle CUDA (the gpu profile). For a small CPU-only image pass the PyTorch CPU wheel index as the
# TORCH_INDEX_URL build argument.
FROM python:3.11-slim
ARG TORCH_INDEX_URL=""
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/models/huggingface \
    CHIMED_RAG_CACHE_DIR=/models/chimed-rag \
    CHIMED_RAG_INDEX_DIR=/data/index/default
# torch first and pinned, from the chosen index, so that the project install cannot pull another build.
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else pip install torch==2.13.0; fi
COPY pyproject.toml README.md ./
COPY indexer indexer
COPY rag rag
COPY api api
COPY corpus corpus
# The question sets `chimed-rag calibrate` and `chimed-rag train triage` learn from.
COPY tests/data tests/data
# Editable install: settings resolve corpus/ and indexes/ relative to /app. The milvus extra (the pymilvus
# client) lets the same image serve CHIMED_RAG_STORE=milvus (the compose file's milvus profile).
RUN pip install -e ".[milvus]"
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["chimed-rag", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-build"]
