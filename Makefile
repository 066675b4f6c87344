# tritonrepo — set-up, tests and the main job.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
CONSTRAINTS = constraints.txt

.PHONY: install proto test test-fast demo validate-examples bench support-matrix clean

install: $(VENV)/.installed

# Every install goes through constraints.txt, which pins torch==2.13.0 (the CPU wheel).
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[server,test]'
	touch $@

# Regenerate the Python code for proto/ (the project's own schemas; Triton's comes from tritonclient).
proto:
	$(PY) -m grpc_tools.protoc -Iproto --python_out=src/tritonrepo/_proto proto/tritonrepo/manifest.proto
	mv src/tritonrepo/_proto/tritonrepo/manifest_pb2.py src/tritonrepo/_proto/manifest_pb2.py
	rmdir src/tritonrepo/_proto/tritonrepo

# Two workers (pytest-xdist), one test file per worker at a time: module-scoped servers and session-built tiny
# models stay per worker; most of the time goes into server start-up and stub imports, so 2 workers on 2 cores
# roughly halve the wall time.
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -q -m "not server and not slow"

# The main job on the real all-MiniLM-L6-v2 checkpoint: add-hf (ONNX and Python backend) -> real server -> compare.
demo: install
	$(PY) examples/minilm_demo.py

# CI: the examples' repository must validate clean; findings print as GitHub annotations.
validate-examples: install
	$(PY) examples/build_repositories.py build/example_repository > build-examples.log 2>&1 || (cat build-examples.log; exit 1)
	$(VENV)/bin/tritonrepo validate build/example_repository --format github --warnings-as-errors

# Prints validate speed vs the real server start + load (1 and 40 models), peak RSS, big inputs (--agreement: corpus).
bench: install
	$(PY) bench/validate.py

# The support matrix (architecture x task x onnx/python/pipeline) from the tests that record it (matrix_record
# fixture -> build/support-matrix.json), rendered to docs/support-matrix.md and the copy add-hf --list-tasks prints.
# Families add their matrix test files to MATRIX_TESTS.
MATRIX_TESTS ?= tests/test_add.py tests/test_pipeline_server.py tests/test_matrix_text.py tests/test_matrix_media.py \
	tests/test_generation_media_onnx.py
support-matrix: install
	rm -f build/support-matrix.json
	$(PY) -m pytest -q $(MATRIX_TESTS)
	$(PY) -m tritonrepo.tasks.matrix --input build/support-matrix.json --output docs/support-matrix.md

clean:
	rm -rf $(VENV) demo_repository build build-examples.log .pytest_cache
