# Multi-stage build on Debian 12. The build stage runs exactly the README's steps:
# deploy/install-deps.sh, then deploy/build.sh release.
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN ./deploy/install-deps.sh && ./deploy/build.sh release

FROM debian:bookworm-slim
COPY deploy/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && useradd --system --uid 10001 --home-dir /var/lib/turnout --create-home turnout
COPY --from=build /src/build/turnout /usr/local/bin/turnout
USER turnout
WORKDIR /var/lib/turnout
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090 && printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && head -c 12 <&3 | grep -q " 200"'
ENTRYPOINT ["/usr/local/bin/turnout"]
CMD ["--config", "/etc/turnout/turnout.yaml"]
