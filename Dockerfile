# syntax=docker/dockerfile:1
# Build: the release binary with every domain (override FEATURES to compile a subset, e.g.
# --build-arg FEATURES="auth,catalog,kafka"). Runtime: a slim Debian with only CA
# certificates, a non-root user, and a health check; migrations run at start-up.

FROM rust:1.95-bookworm AS build
ARG FEATURES=""
WORKDIR /src
# librdkafka is built from source by rdkafka's build script (configure + make, in this image).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN if [ -n "$FEATURES" ]; then \
      cargo build --release --locked --no-default-features --features "$FEATURES"; \
    else \
      cargo build --release --locked; \
    fi

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
