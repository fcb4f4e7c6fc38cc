# One image for every DIGITS service; compose.yaml picks the service with `command`.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libquadmath0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /app
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 PATH=/app/.venv/bin:$PATH OMP_NUM_THREADS=2
# Dependency layer first (cached while only our code changes).
COPY pyproject.toml uv.lock ./
COPY proto/pyproject.toml proto/
COPY imaging/pyproject.toml imaging/
COPY cli/pyproject.toml cli/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/datasets/pyproject.toml services/datasets/
COPY services/trainer/pyproject.toml services/trainer/
COPY services/inference/pyproject.toml services/inference/
COPY services/gpu-broker/pyproject.toml services/gpu-broker/
RUN uv sync --frozen --all-packages --no-install-workspace --no-dev
COPY . .
RUN uv sync --frozen --all-packages --no-dev
EXPOSE 5000
