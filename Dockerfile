# The `rivulet` binary: one image for every component; the subcommand is the entrypoint's
# first argument (`controller`, `router`, `fetcher`), as deploy/ runs it.
# Build: docker build -t ghcr.io/rivulet-dev/rivulet:<version> .   (docs/install.md)
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rivulet-operator --bin rivulet \
    && cp target/release/rivulet /rivulet

# glibc, libgcc and CA certificates only; runs as uid 65532 ("nonroot"), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /rivulet /usr/local/bin/rivulet
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rivulet"]
