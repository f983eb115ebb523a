# One image, two torch flavours: the CPU wheel (default; the project is tested with torch 2.13.0) or the CUDA
# build for the gpu profile (TORCH_INDEX_URL=https://pypi.org/simple, whose Linux wheels bundle CUDA).
FROM python:3.11-slim
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/models/huggingface \
    CHIMED_RAG_CACHE_DIR=/models/chimed-rag \
    CHIMED_RAG_INDEX_DIR=/data/index/default
# torch first and pinned, from the chosen index, so that the project install cannot pull another build.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY pyproject.toml README.md ./
COPY indexer indexer
COPY rag rag
COPY api api
COPY corpus corpus
# Editable install: settings resolve corpus/ and indexes/ relative to /app.
RUN pip install -e .
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["chimed-rag", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-build"]
