# shmrt serve as a Vertex AI custom container (or any Docker / Kubernetes
# deployment): docs/serving.md. Build: docker build -t shmrt .
# The commands of both stages live in scripts/container.sh, which
# scripts/dev.sh test runs too, so this file cannot drift from what is tested.

FROM debian:12 AS build
COPY scripts/container.sh /tmp/container.sh
RUN apt-get update && apt-get install -y --no-install-recommends $(/tmp/container.sh build-packages) \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/container.sh build /opt/shmrt

FROM debian:12-slim
COPY --from=build /src/scripts/container.sh /tmp/container.sh
RUN apt-get update && apt-get install -y --no-install-recommends $(/tmp/container.sh runtime-packages) \
    && rm -rf /var/lib/apt/lists/* /tmp/container.sh
COPY --from=build /opt/shmrt /opt/shmrt
ENV PATH=/opt/shmrt/bin:$PATH \
    LD_LIBRARY_PATH=/opt/shmrt/lib/x86_64-linux-gnu
# Vertex AI sets AIP_HTTP_PORT (8080 by default), AIP_HEALTH_ROUTE,
# AIP_PREDICT_ROUTE and AIP_STORAGE_URI at run time: never bake them in.
EXPOSE 8080
ENTRYPOINT ["shmrt", "serve"]
