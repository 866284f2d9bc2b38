# hyper2kvm: `make demo` and `make test` work on a fresh Debian 12 machine (root, Node 20, npm).
.PHONY: setup build demo test test-unit bench bench-pipeline bench-daemon bench-startup bench-cluster clean fuzz fuzz-ci

setup:
	bash scripts/setup.sh

build: setup

demo: setup
	bash scripts/demo.sh

SUITES = 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'examples/*/test/**/*.test.ts' 'test/e2e/**/*.test.ts'

test: setup
	npx mocha $(SUITES)

test-unit: setup
	npx mocha 'test/unit/**/*.test.ts'

bench: setup
	node bench/convert.mjs

bench-pipeline: setup
	node bench/pipeline.mjs

bench-daemon: setup
	node bench/daemon.mjs

bench-startup: setup
	node bench/startup.mjs

bench-cluster: setup
	node bench/cluster.mjs

clean:
	rm -rf dist plugins/*/dist demo out oclif.manifest.json

# Coverage-guided fuzzing of the parsers of hostile bytes (README: Development). Findings: .cache/fuzz/<target>/findings/.
FUZZ_SECONDS ?= 60
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) nice -n 10 npx tsx test/fuzz/run.ts

# The bounded run CI does: every target for 10 s (7 targets: about 80 s), from a fixed seed so CI explores the same inputs each time.
fuzz-ci: setup
	FUZZ_SEED=1 FUZZ_SECONDS=10 FUZZ_TIMEOUT_MS=10000 npx tsx test/fuzz/run.ts
