# One image for every process of the network; docker-compose.yml picks the
# command, the same one `make run` runs (see Procfile).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY shared ./shared
COPY services ./services
COPY gateway ./gateway
RUN useradd --system --no-create-home network
USER network
