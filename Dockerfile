# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ferrotel \
    && strip target/release/ferrotel

# Runtime stage: a small image with the binary only, running as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ferrotel
COPY --from=build /src/target/release/ferrotel /usr/local/bin/ferrotel
COPY config.example.yaml /etc/ferrotel/config.yaml
USER 10001
# OTLP gRPC, OTLP HTTP, own metrics, health check.
EXPOSE 4317 4318 8888 13133
ENTRYPOINT ["/usr/local/bin/ferrotel"]
# The example listens on localhost; in a container it must listen on every interface.
CMD ["--config", "/etc/ferrotel/config.yaml", \
     "--set=receivers.otlp.protocols.grpc.endpoint=0.0.0.0:4317", \
     "--set=receivers.otlp.protocols.http.endpoint=0.0.0.0:4318", \
     "--set=extensions.health_check.endpoint=0.0.0.0:13133"]
