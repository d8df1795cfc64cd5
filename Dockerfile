# agentwatch container image: `docker build -t agentwatch:0.1.0 .` (used by deploy/compose
# and deploy/k8s). Two stages: a Rust build with the C toolchain RocksDB and librdkafka
# need, then a slim runtime with the binary and the built-in detectors only.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin agentwatch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/agentwatch agentwatch \
    && mkdir -p /var/lib/agentwatch && chown agentwatch /var/lib/agentwatch
COPY --from=build /src/target/release/agentwatch /usr/local/bin/agentwatch
USER agentwatch
WORKDIR /var/lib/agentwatch
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/agentwatch"]
CMD ["run", "--config", "/etc/agentwatch/agentwatch.toml"]
