# One deck as its own container image, the conventional way:
#
#   docker build --build-arg DECK=decks/talk.md -t talk .
#   docker run --rm -p 8080:8080 --read-only --cap-drop=ALL talk
#
# A build stage compiles the deck (Markdown, WeasyPrint, Pango); the runtime
# stage holds only Python, aiohttp and the compiled artifacts, runs as a
# non-root user and checks its own health. `slidesvc image DECK.md -o OUT`
# builds a smaller image of the same shape without any container daemon.
#
# Build arguments:
#   DECK            the deck to build (a path inside this folder)
#   BASE            the Python 3.11 image of both stages (Debian-based, with apt)
#   PIP_NO_INDEX, PIP_FIND_LINKS
#                   read by pip: set them to install from a wheel folder in the
#                   build context (offline builds), e.g.
#                   --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/src/wheelhouse

ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG DECK=decks/slidesvc.md
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_NO_INDEX=${PIP_NO_INDEX} \
    PIP_FIND_LINKS=${PIP_FIND_LINKS} \
    DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install /src
RUN /opt/venv/bin/python -c "import sys; from slidesvc.image import dockerfile_stage; \
raise SystemExit(dockerfile_stage(sys.argv[1], '/out'))" "/src/${DECK}" \
 && /opt/venv/bin/pip install --no-deps --target /out/deps -r /out/requirements.txt \
 && rm -rf /out/deps/bin \
 && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash -s /out -p /opt/slidesvc \
        /out/app /out/deps

FROM ${BASE} AS runtime
COPY --from=build /out/deps /opt/slidesvc/deps
COPY --from=build /out/app /opt/slidesvc/app
COPY --from=build /out/deck /deck
ENV PYTHONPATH=/opt/slidesvc/app:/opt/slidesvc/deps \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONSAFEPATH=1 \
    PORT=8080
LABEL org.opencontainers.image.title="slidesvc deck" \
      org.opencontainers.image.source="https://github.com/slidesvc/slidesvc"
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["python3", "-m", "slidesvc.healthcheck"]
ENTRYPOINT ["python3", "-m", "slidesvc.server", "--artifacts", "/deck", "--host", "0.0.0.0"]
