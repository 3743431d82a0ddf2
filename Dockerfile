# nongyun: one image for every process kind (ingest, web, jobs); the command picks which.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 NONGYUN_CONFIG=/app/config NONGYUN_DATA_DIR=/data
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY service ./service
COPY sensors ./sensors
COPY config ./config
RUN pip install --no-cache-dir '.[deploy]'
RUN useradd --system --home /app nongyun && mkdir -p /data && chown nongyun /data
USER nongyun
EXPOSE 8080
CMD ["nongyun", "serve"]
