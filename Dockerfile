# The slim service image: `docker build -t deepfake-detector .` then
# `docker run -p 8000:8000 deepfake-detector` -> web page and REST API on http://localhost:8000/.
# No PyTorch inside (ONNX Runtime runs the shipped models); --model hf://owner/name works with network.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY scripts/install_service.sh ./scripts/
# The same script CI runs (tests/test_service_image.py).
RUN bash scripts/install_service.sh /opt/venv && rm -rf /src
ENV PATH=/opt/venv/bin:$PATH

RUN useradd --create-home --uid 10001 detector
USER detector
WORKDIR /home/detector
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["deepfake-detector", "serve", "--host", "0.0.0.0", "--port", "8000"]
