# nongyun: one image for every process kind (ingest, web, jobs); the command picks which.
# Stage 1 builds the wheel: setup.py puts ECharts into it from package-lock.json with `npm pack`
# (NONGYUN_REQUIRE_ASSETS=1: no wheel without charts) and carries config/ as the default district.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md package.json package-lock.json ./
COPY service ./service
COPY sensors ./sensors
COPY config ./config
RUN NONGYUN_REQUIRE_ASSETS=1 pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime, with the tested versions of constraints.txt and neither node nor npm.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 NONGYUN_CONFIG=/app/config NONGYUN_DATA_DIR=/data
WORKDIR /app
COPY constraints.txt ./
COPY --from=build /wheels /wheels
# The weekly 墒情简报 PDF embeds a Chinese font found through fontconfig (never downloaded at run time)
RUN apt-get update && apt-get install -y --no-install-recommends fontconfig fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir -c constraints.txt "$(ls /wheels/nongyun-*.whl)[deploy]" && rm -rf /wheels
COPY config ./config
RUN useradd --system --home /app nongyun && mkdir -p /data && chown nongyun /data
USER nongyun
EXPOSE 8080
CMD ["nongyun", "serve"]
