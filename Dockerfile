# syntax=docker/dockerfile:1
# Build: the release binary with every domain (override FEATURES to compile a subset, e.g.
# --build-arg FEATURES="auth,catalog,kafka"). Runtime: a slim Debian with only CA
# certificates, a non-root user, and a health check; migrations run at start-up.
# CI replays this file without a Docker engine (scripts/check-container.sh, with
# scripts/dockerfile.py): keep the build stage's RUN lines to relative paths under WORKDIR.

FROM rust:1.95-bookworm AS build
ARG FEATURES=""
WORKDIR /src
# Dependencies first, in a layer of their own that is reused until Cargo.toml, Cargo.lock or
# FEATURES change. Cargo reads every target the manifest declares, so benches/ comes along
# (and vendor/, the patched crates Cargo.toml names),
# and a stub lib and bin stand in for src/ while the dependencies compile. librdkafka is
# built from source by rdkafka's build script (configure + make, in this image).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY vendor ./vendor
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked ${FEATURES:+--no-default-features --features "$FEATURES"}
# Then Basalt itself. COPY keeps the files' modification times, which may be older than the
# stub build: touching the crate roots makes Cargo rebuild them instead of keeping the stub.
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked ${FEATURES:+--no-default-features --features "$FEATURES"}

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app basalt
WORKDIR /app
COPY --from=build /src/target/release/basalt /usr/local/bin/basalt
COPY config ./config
RUN mkdir -p /app/data && chown basalt /app/data
USER basalt
ENV BASALT_PROFILE=production \
    BASALT__SERVER__HOST=0.0.0.0 \
    BASALT__SERVER__PORT=8080 \
    BASALT__DATABASE__MIGRATE_ON_START=true
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["basalt"]
CMD ["serve"]
