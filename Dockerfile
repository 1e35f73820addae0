# syntax=docker/dockerfile:1
# Multi-stage build: compile against Debian's librocksdb-dev (fast; see .cargo/config.toml),
# with the dependencies cached by cargo-chef, and run as a non-root user with the data
# directory on a volume.
#   docker build --build-arg STOREFRONT_COMMIT="$(git rev-parse --short=12 HEAD)" -t storefront .
#   docker run -p 8080:8080 -v storefront-data:/data storefront

FROM rust:1-bookworm AS chef
# Debian's own package versions are what bookworm ships; pinning them would break on every
# point release (hadolint DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb-dev libclang-dev clang pkg-config \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
ARG STOREFRONT_COMMIT=unknown
ENV STOREFRONT_COMMIT=${STOREFRONT_COMMIT}
RUN cargo build --release --locked --bin storefront --bin storefront-loadtest \
 && cp target/release/storefront target/release/storefront-loadtest /usr/local/bin/

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data storefront \
 && mkdir -p /data /etc/storefront \
 && chown storefront /data
COPY --from=builder /usr/local/bin/storefront /usr/local/bin/storefront-loadtest /usr/local/bin/
COPY config.toml /etc/storefront/config.toml
COPY templates/email /etc/storefront/templates/email
USER 10001
WORKDIR /data
VOLUME ["/data"]
ENV STOREFRONT__SERVER__LISTEN=0.0.0.0:8080 \
    STOREFRONT__STORAGE__DATA_DIR=/data \
    STOREFRONT__EMAIL__TEMPLATES_DIR=/etc/storefront/templates/email
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["storefront"]
# An empty /data volume becomes a new store (logged); `--demo` also loads the demo catalog.
CMD ["serve", "--config", "/etc/storefront/config.toml"]
