# Herald's container image: built in one stage, run from a small one as a non-root user.
#   docker build -t herald .
#   docker run -p 8071:8071 -v herald-data:/var/lib/herald herald
# The embedded SQLite database lives in the volume; set HERALD_DATABASE__URL to a
# postgres:// URL to share a database between nodes (compose.yaml runs three).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The release binary only; the lock file pins every dependency.
RUN cargo build --release --locked -p herald \
    && cp target/release/herald /usr/local/bin/herald

FROM debian:bookworm-slim AS runtime
# CA roots for HTTPS endpoints; nothing else is needed at run time (SQLite is built in).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/herald --create-home herald
COPY --from=build /usr/local/bin/herald /usr/local/bin/herald
USER 10001:10001
WORKDIR /var/lib/herald
ENV HERALD_LISTEN=0.0.0.0:8071 \
    HERALD_DATA_DIR=/var/lib/herald
VOLUME ["/var/lib/herald"]
EXPOSE 8071
ENTRYPOINT ["herald"]
CMD ["serve"]
