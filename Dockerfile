# driftnet's image: the package and its runtime dependencies at the versions constraints.txt
# pins; no dev tools, no embedded broker. docker-compose.yml builds it; tests/project/test_compose.py
# checks it.
#
#   docker build -t driftnet .
#   docker run --rm -e DRIFTNET_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 driftnet          # the worker
#   docker run --rm -i driftnet driftnet check - < examples/events.jsonl               # any command

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/driftnet
WORKDIR /src
# What `pip install .` reads: the project file (its readme included) and the packages it lists.
COPY pyproject.toml constraints.txt README.md ./
COPY contract contract
COPY detectors detectors
COPY harvest harvest
COPY ingest ingest
COPY alerts alerts
COPY storage storage
COPY streams streams
COPY sandbox sandbox
COPY cli cli
RUN /opt/driftnet/bin/pip install -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/driftnet/bin:$PATH \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/driftnet /opt/driftnet
# The default worker.data_dir and harvest.location are relative: driftnet-data/ under the
# working directory. They exist here, owned by the user, so that a named volume mounted on
# either starts with that owner.
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin driftnet \
    && mkdir -p /srv/driftnet/driftnet-data/worker /srv/driftnet/driftnet-data/harvest \
    && chown -R driftnet:driftnet /srv/driftnet
WORKDIR /srv/driftnet
USER driftnet
# /health and /metrics (http.port), when the worker binds http.host = 0.0.0.0.
EXPOSE 9464
# Runs the command with every empty DRIFTNET_* variable removed: compose's ${VAR:-} passes an
# empty string when VAR is unset, and an empty setting must mean "not set" (an empty
# alerts.slack_token would otherwise turn Slack on with no token).
ENTRYPOINT ["python", "-c", "import os, sys; args = sys.argv[1:] or sys.exit('driftnet image: no command given'); env = {k: v for k, v in os.environ.items() if v or not k.startswith('DRIFTNET_')}; os.execvpe(args[0], args, env)"]
CMD ["driftnet", "worker"]
