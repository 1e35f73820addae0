# syntax=docker/dockerfile:1
# Multi-stage build: compile against Debian's librocksdb-dev (fast; see .cargo/config.toml),
# run as a non-root user with the data directory on a volume.

FROM rust:1-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb-dev libclang-dev clang pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Cache dependencies: build against the manifests first, then the sources.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY storage/Cargo.toml storage/Cargo.toml
COPY index/Cargo.toml index/Cargo.toml
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN mkdir -p src storage/src storage/benches index/src loadtest/src benches tests/api \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs storage/src/lib.rs index/src/lib.rs \
 && echo 'fn main() {}' > loadtest/src/main.rs && echo 'fn main() {}' > benches/catalog.rs \
 && echo 'fn main() {}' > storage/benches/records.rs && echo 'fn main() {}' > tests/api/main.rs \
 && cargo build --release --workspace || true
COPY . .
RUN touch src/main.rs src/lib.rs storage/src/lib.rs index/src/lib.rs loadtest/src/main.rs \
 && cargo build --release --workspace --bins \
 && cp target/release/storefront target/release/storefront-loadtest /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data storefront \
 && mkdir -p /data /etc/storefront && chown storefront /data
COPY --from=builder /usr/local/bin/storefront /usr/local/bin/storefront-loadtest /usr/local/bin/
COPY config.toml /etc/storefront/config.toml
COPY templates/email /etc/storefront/templates/email
USER storefront
WORKDIR /data
VOLUME ["/data"]
ENV STOREFRONT__SERVER__LISTEN=0.0.0.0:8080 \
    STOREFRONT__STORAGE__DATA_DIR=/data \
    STOREFRONT__EMAIL__TEMPLATES_DIR=/etc/storefront/templates/email
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["storefront"]
CMD ["serve", "--config", "/etc/storefront/config.toml"]
