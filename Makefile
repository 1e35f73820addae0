# The two commands a newcomer needs:
#   make run    installs system packages, builds, and serves the demo catalog on 127.0.0.1:8080
#   make test   installs system packages and runs the whole test suite (what CI runs)
# Builds go to a stable target directory outside the clone so fresh clones reuse them.
CARGO_TARGET_DIR ?= $(HOME)/.cache/storefront-target
export CARGO_TARGET_DIR

.PHONY: setup run test bench import-chorus lint

setup:
	./scripts/setup.sh

run: setup
	cargo run --release --bin storefront -- serve --demo

test: setup
	cargo test --workspace --all-targets --features storefront/failpoints

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --features storefront/failpoints -- -D warnings

bench: setup
	cargo bench --workspace

import-chorus: setup
	cargo run --release --bin storefront -- import --format chorus ../shared/data/chorus-icecat/products.jsonl.gz
